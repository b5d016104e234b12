using System.Text;
using System.Text.Json.Nodes;
using CsCheck;
using Kiln.Runtime;

namespace Kiln.Tests.Fuzzing;

/// <summary>
/// Mutated tokenizer.json and tokenizer_config.json (a random node of the JSON replaced or removed,
/// the model type changed, raw-byte damage): loading, encoding and decoding either work or throw a
/// one-line KilnException naming one of the two files. The tokenizer itself runs in Hugging Face's
/// native library, so this also checks that its errors are caught and that nothing we pass it makes it abort.
/// </summary>
public sealed class TokenizerFilesFuzzTests : IDisposable
{
    private static readonly int Cases = FuzzOutcome.Scaled(1000);

    private static readonly string[] Values =
    [
        "null", "0", "1", "-1", "2147483648", "16777216", "1.5", "1e400", "true", "\"\"", "\"<s>\"", "\"zz\"", "\"BPE\"", "\"Unigram\"",
        "\"WordPiece\"", "\"WordLevel\"", "\"Nope\"", "[]", "[\"a\"]", "[[\"a\", 1.0]]", "[\"▁ t\"]", "[[\"x\", \"y\"]]", "{}",
        "{\"content\": \"<s>\"}", "{\"type\": \"Sequence\"}", "{\"id\": 1}",
    ];

    private readonly TempDir dir = new();
    private readonly string tokenizerJson = File.ReadAllText(Path.Combine(TestPaths.DefaultModel, "tokenizer.json"));
    private readonly string tokenizerConfig = File.ReadAllText(Path.Combine(TestPaths.DefaultModel, "tokenizer_config.json"));

    public void Dispose() => dir.Dispose();

    [Fact]
    public void MutatedTokenizerFilesLoadOrFailWithOneLineNamingTheFile()
    {
        var loaded = 0;
        Gen.Int.Sample(seed =>
        {
            var random = new Random(seed);
            var model = Directory.CreateDirectory(dir.File($"model-{Guid.NewGuid():N}")).FullName;
            var mutateConfig = random.Next(4) == 0;
            File.WriteAllBytes(Path.Combine(model, "tokenizer.json"), mutateConfig ? Encoding.UTF8.GetBytes(tokenizerJson) : Mutate(tokenizerJson, random));
            File.WriteAllBytes(Path.Combine(model, "tokenizer_config.json"), mutateConfig ? Mutate(tokenizerConfig, random) : Encoding.UTF8.GetBytes(tokenizerConfig));
            try
            {
                var ok = FuzzOutcome.AcceptedOrRefused(() =>
                {
                    using var tokenizer = Tokenizer.Load(model);
                    var ids = tokenizer.Encode("Once upon a time <s> héllo 🙂");
                    tokenizer.Decode(ids);
                    tokenizer.Decode(ids, skipSpecialTokens: false);
                }, "tokenizer", $"seed {seed}");
                if (ok) Interlocked.Increment(ref loaded);
            }
            finally
            {
                Directory.Delete(model, recursive: true);
            }
        }, iter: Cases);
        Assert.True(loaded > 0, "no mutated tokenizer loaded");
    }

    [Fact]
    public void KilnProcessesOverMutatedTokenizerFilesExitCleanly()
    {
        Gen.Int.Sample(seed =>
        {
            var random = new Random(seed);
            var model = dir.File($"model-{Guid.NewGuid():N}");
            Kiln.Tests.Checkpoints.CraftedFiles.CopyFolder(TestPaths.DefaultModel, model);
            File.WriteAllBytes(Path.Combine(model, "tokenizer.json"), Mutate(tokenizerJson, random));
            FuzzOutcome.GenerateExitsCleanly(model, $"seed {seed}", "--prompt", "Once upon a time");
        }, iter: FuzzOutcome.Scaled(2), threads: 1);
    }

    private static byte[] Mutate(string valid, Random random)
    {
        switch (random.Next(10))
        {
            case 0: // truncated
                return Encoding.UTF8.GetBytes(valid[..random.Next(valid.Length)]);
            case 1: // invalid UTF-8 inside the first string
                var utf8 = Encoding.UTF8.GetBytes(valid);
                var at = Array.IndexOf(utf8, (byte)'"') + 1;
                return [.. utf8[..at], 0xFF, .. utf8[at..]];
            case 2: // a duplicated top-level key
                var root = JsonNode.Parse(valid)!.AsObject();
                var key = root.ElementAt(random.Next(root.Count)).Key;
                return Encoding.UTF8.GetBytes(valid.Insert(valid.IndexOf('{') + 1, $"\"{key}\": null, "));
            default:
                var json = JsonNode.Parse(valid)!;
                for (var edits = random.Next(1, 3); edits > 0; edits--) Edit(json, random);
                return Encoding.UTF8.GetBytes(json.ToJsonString());
        }
    }

    // Replace or remove a random node; paths near the root (model, added_tokens, post_processor) are picked more often.
    private static void Edit(JsonNode root, Random random)
    {
        var nodes = new List<JsonNode>();
        Collect(root, nodes, depth: 0);
        var target = nodes[random.Next(nodes.Count)];
        var parent = target.Parent;
        if (parent is null) return;
        var value = Values[random.Next(Values.Length)];
        switch (parent)
        {
            case JsonObject o:
                var name = target.GetPropertyName();
                if (random.Next(4) == 0) o.Remove(name);
                else o[name] = JsonNode.Parse(value);
                break;
            case JsonArray a:
                var index = target.GetElementIndex();
                if (random.Next(4) == 0) a.RemoveAt(index);
                else a[index] = JsonNode.Parse(value);
                break;
        }
    }

    // Every node up to depth 4, except most vocabulary and merge entries (they would dominate the picks).
    private static void Collect(JsonNode? node, List<JsonNode> nodes, int depth)
    {
        if (node is null || depth > 4) return;
        nodes.Add(node);
        IEnumerable<JsonNode?> children = node switch
        {
            JsonObject o => o.Select(p => p.Value),
            JsonArray a => a,
            _ => [],
        };
        foreach (var child in children.Take(depth >= 2 ? 4 : int.MaxValue)) Collect(child, nodes, depth + 1);
    }
}
