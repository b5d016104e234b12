using System.Text;
using System.Text.Json.Nodes;
using CsCheck;
using Kiln.Ops;

namespace Kiln.Tests.Fuzzing;

/// <summary>
/// Fuzzes rank 0's graph.json of a real final snapshot: byte flips, truncation, invalid UTF-8,
/// duplicated properties, deep nesting, and JSON edits of op names, attributes, shapes, dtypes,
/// the model's facts, metadata, parameters and recipes, inputs and outputs. The manifest is re-checksummed, so each
/// mutation passes the integrity check and only the strict reader, the verifier and the model checks
/// stand between it and a run. Contract: a miss with a reason, or a hit that verifies, fits the model
/// and runs; never an exception.
/// </summary>
public sealed class GraphJsonFuzzTests(PrimedEntry primed) : IClassFixture<PrimedEntry>
{
    /// <summary>Cases of the in-process fuzz test (each a restore of about 70 kB of JSON).</summary>
    public static readonly int Cases = FuzzOutcome.Scaled(600);

    // Values a hostile entry could hold anywhere: wrong types, out of range, huge, empty.
    private static readonly string[] Values =
    [
        "0", "-1", "1", "2", "3", "7", "8", "64", "2147483648", "-2147483649", "9223372036854775807", "18446744073709551616",
        "1e308", "1e400", "-1e308", "0.5", "-0.0", "\"\"", "\"x\"", "\"f32\"", "\"i64\"", "\"bf16\"", "\"max_seq\"", "\"batch\"",
        "null", "true", "false", "[]", "{}", "[1,2]", "[-1]", "[4294967296,4294967296]", "\"512\"", "\"true\"", "\"NaN\"",
    ];

    private static readonly string[] DTypes = ["f32", "f16", "bf16", "i64", "i32", "bool", "u8", "f64", "F32", ""];

    private static readonly string[] MetadataKeys = ["kv_cache", "kv_cache.layers", "kv_cache.kv_heads", "kv_cache.head_dim", "session.prepacking"];

    private static readonly string[] ModelFields =
        ["architecture", "family", "vocab_size", "context_length", "layers", "hidden", "heads", "kv_heads", "head_dim", "bos_token_id", "eos_token_ids"];

    private static readonly string[] MetadataValues = ["", "many", "0", "-1", "1", "2", "4", "5", "8", "511", "513", "4096", "2147483648", "true", "True", "1e3", " 512", "LlamaForCausalLM"];

    private static readonly string[] Kinds =
    [
        "byte flip", "truncation", "invalid UTF-8", "duplicated property", "deep nesting", "any value", "removal",
        "op name", "attribute", "shape", "dtype", "model", "metadata", "recipe", "parameter", "value name", "outputs",
    ];

    [Fact]
    public void EveryMutatedGraphIsAMissWithAReasonOrASoundHit()
    {
        var hits = 0;
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
        Gen.Select(Gen.Int[0, Kinds.Length - 1], Gen.Int[0, int.MaxValue], Gen.Int[0, int.MaxValue], (kind, a, b) => (Kind: kind, A: a, B: b))
            .Sample(m =>
            {
                var outcome = primed.RestoreGraph(Mutate(primed.Graph, m.Kind, m.A, m.B));
                // Running a hit costs a session; the first hits of each kind run, the rest are checked statically.
                primed.AssertMissOrSoundHit(outcome, runHit: outcome.Hit && hits++ < 40);
                var key = $"{Kinds[m.Kind]}: {(outcome.Hit ? "hit" : "miss")}";
                outcomes[key] = outcomes.GetValueOrDefault(key) + 1;
            }, iter: Cases, threads: 1, print: m => $"{Kinds[m.Kind]} a={m.A} b={m.B}");
        // Most structural mutations are refused; both outcomes occur, so the property is not vacuous.
        Assert.Contains(outcomes.Keys, k => k.EndsWith(": miss", StringComparison.Ordinal));
        Assert.True(outcomes.Where(o => o.Key.EndsWith(": miss", StringComparison.Ordinal)).Sum(o => o.Value) > Cases / 2, string.Join(", ", outcomes));
    }

    [Fact]
    public void RealRunsOverMutatedEntriesGiveTheUncachedOutput()
    {
        using var temp = new TempDir();
        string[] generate = ["generate", "--prompt-ids", "1", "--max-new-tokens", "4"];
        var uncached = KilnCli.Run([.. generate, "--no-cache"]);
        Assert.True(uncached.ExitCode == 0, uncached.Stderr);
        var primed = Path.Combine(temp.Path, "primed");
        var first = KilnCli.RunWith(temp.Path, new Dictionary<string, string> { ["KILN_CACHE_DIR"] = primed }, generate);
        Assert.Equal(uncached.Stdout, first.Stdout);

        // Every entry damaged alike: the run cannot resume anywhere, so it compiles, answers as uncached and says why.
        (string Name, Action<string> Damage)[] damages =
        [
            ("vocab_size not a number", e => Tests.Cache.HostileEntry.EditGraph(e, g => g["model"]!["vocab_size"] = "many")),
            ("context length changed", e => Tests.Cache.HostileEntry.EditGraph(e, g => g["model"]!["context_length"] = 1000)),
            ("FIFO for a listed file", e => { File.Delete(Tests.Cache.HostileEntry.BuffersFile(e)); Tests.Cache.HostileEntry.MakeFifo(Tests.Cache.HostileEntry.BuffersFile(e)); }),
            ("manifest is a link", e => { File.Move(Path.Combine(e, "manifest.json"), e + ".manifest"); File.CreateSymbolicLink(Path.Combine(e, "manifest.json"), e + ".manifest"); }),
            ("invalid UTF-8", e => Tests.Cache.HostileEntry.Rewrite(e, Tests.Cache.HostileEntry.GraphFile(e), Mutate(File.ReadAllBytes(Tests.Cache.HostileEntry.GraphFile(e)), Array.IndexOf(Kinds, "invalid UTF-8"), 17, 3))),
            ("duplicated property", e => Tests.Cache.HostileEntry.Rewrite(e, Tests.Cache.HostileEntry.GraphFile(e), Mutate(File.ReadAllBytes(Tests.Cache.HostileEntry.GraphFile(e)), Array.IndexOf(Kinds, "duplicated property"), 0, 3))),
        ];
        foreach (var (name, damage) in damages)
        {
            var root = Path.Combine(temp.Path, name.Replace(' ', '-'));
            CopyTree(primed, root);
            foreach (var entry in Directory.GetDirectories(Path.Combine(root, "pipeline"))) damage(entry);
            var run = KilnCli.RunWith(temp.Path, new Dictionary<string, string> { ["KILN_CACHE_DIR"] = root }, generate);
            Assert.True(run.ExitCode == 0, $"{name}: {run.Stderr}");
            Assert.Equal(uncached.Stdout, run.Stdout);
            Assert.Contains("kiln: cache miss (corrupt entry: ", run.Stderr);
            Assert.Equal(2, Directory.GetFileSystemEntries(Path.Combine(root, "quarantine")).Length);
        }
    }

    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var folder in Directory.GetDirectories(from)) CopyTree(folder, Path.Combine(to, Path.GetFileName(folder)));
    }

    /// <summary>The mutation of kind <paramref name="kind"/> chosen by <paramref name="a"/> and <paramref name="b"/>.</summary>
    public static byte[] Mutate(byte[] original, int kind, int a, int b)
    {
        switch (Kinds[kind])
        {
            case "byte flip":
                var flipped = (byte[])original.Clone();
                flipped[a % flipped.Length] ^= (byte)(1 << (b % 8));
                return flipped;
            case "truncation":
                return original[..(a % original.Length)];
            case "invalid UTF-8":
                // Inside a string (just after a quote): an invalid lead byte, an overlong form or a lone surrogate.
                var quotes = Enumerable.Range(0, original.Length).Where(i => original[i] == '"').ToArray();
                byte[][] bad = [[0xFF], [0xC3, 0x28], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0x80]];
                var at = quotes[a % quotes.Length] + 1;
                return [.. original[..at], .. bad[b % bad.Length], .. original[at..]];
            case "duplicated property":
                // A second copy of an object's first property, placed first: a lax reader lets the later one win.
                var text = Encoding.UTF8.GetString(original);
                var opens = Enumerable.Range(0, text.Length - 1).Where(i => text[i] == '{' && text[i + 1] is '"' or '\n' or ' ').ToArray();
                var open = opens[a % opens.Length];
                var nameStart = text.IndexOf('"', open);
                var name = text[nameStart..(text.IndexOf('"', nameStart + 1) + 1)];
                return Encoding.UTF8.GetBytes(text[..(open + 1)] + $"{name}: {Values[b % Values.Length]}," + text[(open + 1)..]);
        }

        var document = JsonNode.Parse(original)!;
        var all = Descendants(document).ToList();
        JsonNode Value() => JsonNode.Parse(Values[b % Values.Length])!;
        switch (Kinds[kind])
        {
            case "deep nesting":
                Replace(all[1 + a % (all.Count - 1)], Enumerable.Range(0, 40 + b % 200).Aggregate((JsonNode)new JsonArray(), (inner, _) => new JsonArray(inner)));
                break;
            case "any value":
                var target = all[1 + a % (all.Count - 1)];
                Replace(target, Value());
                break;
            case "removal":
                var removed = all[1 + a % (all.Count - 1)];
                if (removed.Parent is JsonObject o) o.Remove(removed.GetPropertyName());
                else if (removed.Parent is JsonArray array) array.RemoveAt(removed.GetElementIndex());
                break;
            case "op name":
                var ops = OpRegistry.Default.Names.Order(StringComparer.Ordinal).Append("evil_exec").Append("").ToArray();
                Pick(document["nodes"]!, a)["op"] = ops[b % ops.Length];
                break;
            case "attribute":
                var attributes = document["nodes"]!.AsArray().Select(n => n!["attributes"]!.AsObject()).Where(x => x.Count > 0).ToArray();
                // Mostly the value inside {"kind": ..., "value": ...}, in range for its kind; sometimes the whole attribute.
                var owner = attributes[a % attributes.Length];
                var attribute = owner.ElementAt(b % owner.Count).Value!;
                if (b / 7 % 5 == 0) owner[owner.ElementAt(b % owner.Count).Key] = Value();
                else attribute["value"] = (attribute["kind"]!.ToString(), b / 7 % 5) switch
                {
                    ("int", 1) => JsonValue.Create(-(long)(b % 100)),
                    ("int", 2) => JsonValue.Create(100_000_000L),
                    ("int", _) => JsonValue.Create((long)(b % 100)),
                    ("float", 1) => JsonValue.Create(-1e-5),
                    ("float", 2) => JsonValue.Create(1e300),
                    ("float", _) => JsonValue.Create(0.0),
                    ("ints", _) => JsonNode.Parse($"[{b % 5 - 1}, {b % 7}, -1]"),
                    _ => JsonValue.Create(b % 2 == 0 ? "sin" : "evil"),
                };
                break;
            case "shape":
                var shapes = all.Where(n => n.Parent is JsonObject && n.GetPropertyName() == "shape").OfType<JsonArray>().ToArray();
                var shape = shapes[a % shapes.Length];
                switch (b % 4)
                {
                    case 0 when shape.Count > 0: shape[b / 4 % shape.Count] = Value(); break;
                    case 1: shape.Add(JsonValue.Create((long)(b / 4 % 9))); break;
                    case 2 when shape.Count > 0: shape.RemoveAt(shape.Count - 1); break;
                    default: shape.Insert(0, JsonValue.Create("batch")); break;
                }
                break;
            case "dtype":
                var dtypes = all.Where(n => n.Parent is JsonObject && n.GetPropertyName() is "dtype" or "to").ToArray();
                Replace(dtypes[a % dtypes.Length], JsonValue.Create(DTypes[b % DTypes.Length])!);
                break;
            case "model":
                document["model"]![ModelFields[a % ModelFields.Length]] = Value();
                break;
            case "metadata":
                var metadata = document["metadata"]!.AsObject();
                metadata[MetadataKeys[a % MetadataKeys.Length]] = MetadataValues[b % MetadataValues.Length];
                break;
            case "recipe":
                var recipe = Pick(document["parameters"]!, a)["recipe"]!;
                switch (b % 4)
                {
                    case 0: recipe["sources"]!.AsArray().Add("model.norm.weight"); break;
                    case 1: recipe["sources"]![0] = $"model.layers.{b % 9}.mlp.up_proj.weight"; break;
                    case 2: recipe["steps"]!.AsArray().Add(new JsonObject { ["op"] = "slice", ["dim"] = b / 4 % 3, ["start"] = b / 12 % 100, ["length"] = b / 1200 % 100 }); break;
                    default: recipe["steps"]!.AsArray().Add(JsonNode.Parse(b / 4 % 2 == 0 ? "{\"op\":\"transpose\"}" : "{\"op\":\"cast\",\"to\":\"bf16\"}")); break;
                }
                break;
            case "parameter":
                var parameter = Pick(document["parameters"]!, a);
                if (b % 2 == 0) parameter["shape"]![0] = (long)(b % 1000);
                else parameter["name"] = $"model.layers.{b % 5}.self_attn.q_proj.weight";
                break;
            case "value name":
                var outputs = document["nodes"]!.AsArray().SelectMany(n => n!["outputs"]!.AsArray()).ToArray();
                outputs[a % outputs.Length]!["name"] = b % 2 == 0 ? outputs[b % outputs.Length]!["name"]!.ToString() : "present_key.0";
                break;
            case "outputs":
                var graphOutputs = document["outputs"]!.AsArray();
                switch (b % 3)
                {
                    case 0: graphOutputs[a % graphOutputs.Count] = graphOutputs[(a + 1) % graphOutputs.Count]!.ToString(); break;
                    case 1: graphOutputs.RemoveAt(a % graphOutputs.Count); break;
                    default: graphOutputs.Add(document["nodes"]![a % document["nodes"]!.AsArray().Count]!["outputs"]![0]!["name"]!.ToString()); break;
                }
                break;
        }
        return Encoding.UTF8.GetBytes(document.ToJsonString());
    }

    private static JsonNode Pick(JsonNode array, int a) => array.AsArray()[a % array.AsArray().Count]!;

    private static IEnumerable<JsonNode> Descendants(JsonNode node)
    {
        yield return node;
        var children = node switch
        {
            JsonObject o => o.Select(p => p.Value),
            JsonArray a => a.AsEnumerable(),
            _ => [],
        };
        foreach (var child in children.OfType<JsonNode>())
        {
            foreach (var d in Descendants(child)) yield return d;
        }
    }

    private static void Replace(JsonNode node, JsonNode value)
    {
        if (node.Parent is JsonObject o) o[node.GetPropertyName()] = value;
        else if (node.Parent is JsonArray a) a[node.GetElementIndex()] = value;
    }
}
