using System.Text;
using System.Text.Json.Nodes;
using CsCheck;

namespace Kiln.Tests.Fuzzing;

/// <summary>
/// Fuzzes manifest.json of a real final snapshot: unsafe and linked paths, sizes, hashes, schema
/// versions, keys, world sizes, huge numbers, wrong types, removed and duplicated properties, invalid
/// UTF-8, truncation, deep nesting. A mutation of what the restore checks must be a miss with a
/// reason; one of what it does not use (tool version, creation time, a key component's text) may hit,
/// and then the graph must fit the model. Never an exception.
/// </summary>
public sealed class ManifestFuzzTests(PrimedEntry primed) : IClassFixture<PrimedEntry>
{
    /// <summary>Cases of the in-process fuzz test.</summary>
    public static readonly int Cases = FuzzOutcome.Scaled(600);

    private static readonly string[] Values =
    [
        "0", "-1", "1", "2", "4097", "2147483647", "2147483648", "-9223372036854775808", "9223372036854775807", "18446744073709551616",
        "1e308", "1e400", "0.5", "\"\"", "\"1\"", "\"x\"", "null", "true", "[]", "{}", "[1]", "{\"path\":\"x\"}",
    ];

    private static readonly string[] UnsafePaths =
        ["../x", "/etc/hostname", "rank_0/../../x", "", "rank_0//graph.json", "./manifest.json", "rank_0\\graph.json", "rank_0/graph.json\0", ".", "..", "rank_0/", "evil"];

    // Fields the restore reads, where any change must miss; then those it does not use.
    private static readonly string[] MustMiss =
        ["unsafe path", "linked path", "size", "hash", "schema version", "key", "world size", "wrong type", "removal", "duplicated property", "invalid UTF-8", "truncation", "deep nesting"];

    private static readonly string[] MayHit = ["tool version", "created", "compile time", "component text"];

    private static readonly string[] Kinds = [.. MustMiss, .. MayHit];

    [Fact]
    public void EveryMutatedManifestIsAMissWithAReasonUnlessItChangesNothingARestoreUses()
    {
        var misses = 0;
        Gen.Select(Gen.Int[0, Kinds.Length - 1], Gen.Int[0, int.MaxValue], Gen.Int[0, int.MaxValue], (kind, a, b) => (Kind: kind, A: a, B: b))
            .Sample(m =>
            {
                var outcome = primed.RestoreManifest(Mutate(primed.Manifest, primed.Entry, Kinds[m.Kind], m.A, m.B));
                if (m.Kind < MustMiss.Length) Assert.False(outcome.Hit, "a hit");
                primed.AssertMissOrSoundHit(outcome, runHit: false);
                if (!outcome.Hit) misses++;
            }, iter: Cases, threads: 1, print: m => $"{Kinds[m.Kind]} a={m.A} b={m.B}");
        Assert.True(misses > Cases / 2, $"{misses} misses");
    }

    // Found by an independent fuzzing round: a null in the files list was a miss whose reason was a NullReferenceException.
    [Theory]
    [InlineData("files")]
    [InlineData("components")]
    public void A_null_in_a_list_is_a_miss_naming_the_manifest(string list)
    {
        var manifest = JsonNode.Parse(primed.Manifest)!;
        manifest[list]!.AsArray().Add(null);
        var outcome = primed.RestoreManifest(Encoding.UTF8.GetBytes(manifest.ToJsonString()));
        Assert.False(outcome.Hit);
        Assert.Contains("manifest.json: null in components or files", outcome.MissReason);
    }

    private static byte[] Mutate(string original, string entry, string kind, int a, int b)
    {
        JsonNode? Value() => JsonNode.Parse(Values[b % Values.Length]);
        switch (kind)
        {
            case "invalid UTF-8":
                var bytes = Encoding.UTF8.GetBytes(original);
                var quotes = Enumerable.Range(0, bytes.Length).Where(i => bytes[i] == '"').ToArray();
                byte[][] bad = [[0xFF], [0xC3, 0x28], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0x80]];
                var at = quotes[a % quotes.Length] + 1;
                return [.. bytes[..at], .. bad[b % bad.Length], .. bytes[at..]];
            case "truncation":
                return Encoding.UTF8.GetBytes(original[..(a % original.Length)]);
            case "duplicated property":
                // Every object's properties matter to a restore but the components': duplicate one of the others.
                var manifestObject = JsonNode.Parse(original)!.AsObject();
                var names = manifestObject.Select(p => p.Key).Where(k => k != "components").ToArray();
                var name = names[a % names.Length];
                return Encoding.UTF8.GetBytes("{" + $"\"{name}\": {Values[b % Values.Length]}," + original.TrimStart()[1..]);
        }

        var manifest = JsonNode.Parse(original)!;
        var files = manifest["files"]!.AsArray();
        var file = files[a % files.Count]!;
        switch (kind)
        {
            case "unsafe path":
                file["path"] = UnsafePaths[b % UnsafePaths.Length];
                break;
            case "linked path":
                // A link inside the entry to the real file: the right bytes, reached through a link.
                var link = Path.Combine(entry, "rank_0", "linked");
                if (!File.Exists(link)) File.CreateSymbolicLink(link, Path.Combine(entry, file["path"]!.ToString()));
                file["path"] = "rank_0/linked";
                break;
            case "size":
                var bytesField = file["bytes"]!.GetValue<long>();
                file["bytes"] = (b % 5) switch { 0 => bytesField + 1, 1 => bytesField - 1, 2 => -1, 3 => 1L << 62, _ => 0 };
                break;
            case "hash":
                var hash = file["sha256"]!.ToString();
                file["sha256"] = (b % 4) switch { 0 => hash.ToUpperInvariant(), 1 => hash[..63], 2 => hash[..63] + "g", _ => new string('0', 64) };
                break;
            case "schema version":
                manifest[new[] { "schema_version", "ir_schema_version", "recipe_schema_version" }[a % 3]] = (b % 5) switch
                {
                    0 => JsonValue.Create(0), 1 => JsonValue.Create(-1), 2 => JsonValue.Create(int.MaxValue), 3 => JsonValue.Create("1"), _ => JsonValue.Create(1.5),
                };
                break;
            case "key":
                var key = manifest["key"]!.ToString();
                manifest["key"] = (b % 4) switch { 0 => key[..16], 1 => "", 2 => new string('f', 64), _ => null };
                break;
            case "world size":
                manifest["world_size"] = (b % 3) switch { 0 => 0, 1 => -1, _ => 1_000_000_000 };
                break;
            case "wrong type":
                var field = manifest.AsObject().Select(p => p.Key).Where(k => k is not ("components" or "tool_version")).ElementAt(a % (manifest.AsObject().Count - 2));
                // A value of another JSON kind than the field's (a string for a number, an array for an object, ...).
                var replacement = Value();
                var fieldKind = manifest[field]!.GetValueKind();
                if (replacement is not null && replacement.GetValueKind() == fieldKind)
                    replacement = fieldKind == System.Text.Json.JsonValueKind.String ? JsonValue.Create(0) : JsonValue.Create("changed");
                manifest[field] = replacement;
                break;
            case "removal":
                var removable = manifest.AsObject().Select(p => p.Key).Where(k => k is not ("components" or "tool_version" or "created" or "compile_ms")).ToArray();
                if (b % 3 == 0) files.RemoveAt(files.Count - 1 - a % 2); // rank 0's graph or buffers
                else manifest.AsObject().Remove(removable[a % removable.Length]);
                break;
            case "deep nesting":
                manifest["point"] = Enumerable.Range(0, 20 + b % 200).Aggregate((JsonNode)new JsonArray(), (inner, _) => new JsonArray(inner));
                break;
            case "tool version":
                manifest["tool_version"] = b % 2 == 0 ? "" : new string('v', b % 10_000);
                break;
            case "created":
                manifest["created"] = b % 2 == 0 ? "2000-01-01T00:00:00+00:00" : "yesterday";
                break;
            case "compile time":
                manifest["compile_ms"] = JsonNode.Parse(new[] { "0", "1e308", "-1", "\"fast\"", "1e400" }[b % 5]);
                break;
            case "component text":
                var components = manifest["components"]!.AsArray();
                components[a % components.Count]!["value"] = b % 2 == 0 ? "" : "changed";
                break;
        }
        return Encoding.UTF8.GetBytes(manifest.ToJsonString());
    }
}
