using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CsCheck;
using Kiln.Models;
using Kiln.Models.Llama;

namespace Kiln.Tests.Fuzzing;

/// <summary>
/// Random config.json files (the default model's config with random fields replaced, removed or
/// nested, plus raw-text edits: huge numbers, duplicate keys, invalid UTF-8): reading either accepts
/// a config that satisfies every invariant the graph relies on, or throws a one-line KilnException
/// "config.json: FIELD: problem"; no other exception, and no value wrapped or rounded.
/// </summary>
public sealed partial class ConfigFuzzTests : IDisposable
{
    private static readonly int Cases = FuzzOutcome.Scaled(3000);

    private static readonly string[] Fields =
    [
        "model_type", "hidden_act", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps", "max_position_embeddings",
        "tie_word_embeddings", "attention_bias", "mlp_bias", "rope_theta", "rope_scaling", "architectures",
        "bos_token_id", "eos_token_id", "sliding_window", "use_sliding_window", "partial_rotary_factor",
        "rope_scaling.rope_type", "rope_scaling.factor", "rope_scaling.low_freq_factor",
        "rope_scaling.high_freq_factor", "rope_scaling.original_max_position_embeddings",
    ];

    private static readonly string[] Values =
    [
        "0", "1", "2", "3", "7", "8", "16", "64", "-1", "-64", "1.5", "64.0", "1e-5", "0.0", "-1e-5", "1e-50", "1e39", "1e400", "-1e400",
        "4294967301", "-4294967232", "2147483648", "9223372036854775808", "100000000", "16777217", "1048577",
        "\"64\"", "\"llama\"", "\"mistral\"", "\"qwen2\"", "\"qwen3\"", "\"gpt2\"", "\"silu\"", "\"linear\"", "\"llama3\"", "\"yarn\"",
        "\"LlamaForCausalLM\"", "true", "false", "null", "[]", "[1, 2]", "[511, 512]", "[\"LlamaForCausalLM\"]", "[1, \"a\"]", "{}",
        "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 256}",
        "{\"rope_type\": \"linear\", \"factor\": 2.0}", "{\"a\": {\"b\": [[[]]]}}",
    ];

    private readonly TempDir dir = new();
    private readonly string validText = File.ReadAllText(Path.Combine(TestPaths.DefaultModel, "config.json"));

    public void Dispose() => dir.Dispose();

    [Fact]
    public void RandomConfigsAreAcceptedWithTheirInvariantsOrRefusedNamingTheField()
    {
        int accepted = 0, refused = 0;
        Gen.Int.Sample(seed =>
        {
            var bytes = Mutate(validText, new Random(seed));
            var path = ConfigPath();
            File.WriteAllBytes(path, bytes);
            LlamaConfig? config = null;
            try
            {
                var ok = FuzzOutcome.AcceptedOrRefused(() =>
                {
                    var json = JsonFile.ReadObject(path)!;
                    config = LlamaConfig.Read(new ConfigReader(json, path));
                }, "config.json", $"seed {seed}: {Encoding.UTF8.GetString(bytes)}");
                if (ok)
                {
                    CheckInvariants(config!, bytes);
                    Interlocked.Increment(ref accepted);
                }
                else
                {
                    Interlocked.Increment(ref refused);
                }
            }
            finally
            {
                File.Delete(path);
            }
        }, iter: Cases);
        Assert.True(accepted > Cases / 40 && refused > Cases / 2, $"accepted {accepted}, refused {refused}");
    }

    [Fact]
    public void RefusalsNameTheFileAndAField()
    {
        Gen.Int.Sample(seed =>
        {
            var bytes = Mutate(validText, new Random(seed));
            var path = ConfigPath();
            File.WriteAllBytes(path, bytes);
            try
            {
                var json = JsonFile.ReadObject(path)!;
                LlamaConfig.Read(new ConfigReader(json, path));
            }
            catch (KilnException e)
            {
                var match = FieldPattern().Match(e.Message);
                Assert.True(match.Success && e.Message.StartsWith(path + ": "), $"seed {seed}: {e.Message}");
            }
            finally
            {
                File.Delete(path);
            }
        }, iter: Cases / 4);
    }

    // A folder per case: CsCheck runs cases on several threads.
    private string ConfigPath() => Path.Combine(Directory.CreateDirectory(dir.File(Guid.NewGuid().ToString("N"))).FullName, "config.json");

    [Fact]
    public void KilnProcessesOverMutatedConfigsExitCleanly()
    {
        Gen.Int.Sample(seed =>
        {
            var model = dir.File($"model-{Guid.NewGuid():N}");
            Kiln.Tests.Checkpoints.CraftedFiles.CopyFolder(TestPaths.DefaultModel, model);
            File.WriteAllBytes(Path.Combine(model, "config.json"), Mutate(validText, new Random(seed)));
            FuzzOutcome.GenerateExitsCleanly(model, $"seed {seed}");
        }, iter: FuzzOutcome.Scaled(4), threads: 1);
    }

    // "FILE: line N: ..." (malformed JSON or bytes), "FILE: top level: ..." or "FILE: FIELD...: ..." with a field of config.json.
    [GeneratedRegex(@"\.json: (line \d+|top level|(model_type|hidden_act|vocab_size|hidden_size|intermediate_size|num_hidden_layers|num_attention_heads|num_key_value_heads|head_dim|rms_norm_eps|max_position_embeddings|tie_word_embeddings|attention_bias|mlp_bias|rope_theta|rope_scaling|architectures|bos_token_id|eos_token_id|sliding_window|use_sliding_window|partial_rotary_factor)[.\[\]\w]*): \S")]
    private static partial Regex FieldPattern();

    /// <summary>What the graph relies on, checked against the accepted config and the JSON it came from.</summary>
    private static void CheckInvariants(LlamaConfig c, byte[] bytes)
    {
        Assert.InRange(c.VocabSize, 1, ConfigLimits.MaxVocab);
        Assert.InRange(c.HiddenSize, 1, ConfigLimits.MaxWidth);
        Assert.InRange(c.IntermediateSize, 1, ConfigLimits.MaxWidth);
        Assert.InRange(c.Layers, 1, ConfigLimits.MaxLayers);
        Assert.InRange(c.MaxPositions, 1, ConfigLimits.MaxPositions);
        Assert.True(c.KvHeads > 0 && c.Heads % c.KvHeads == 0);
        Assert.True(c.HeadDim > 0 && c.HeadDim % 2 == 0);
        Assert.InRange((long)c.Heads * c.HeadDim, 1, ConfigLimits.MaxWidth);
        Assert.True(float.IsFinite((float)c.RmsNormEps) && (float)c.RmsNormEps > 0);
        Assert.True(float.IsFinite((float)c.Rope.Theta) && (float)c.Rope.Theta > 0);
        Assert.True(c.Rope.Factor >= 1);
        if (c.Rope.Type == "llama3")
            Assert.True(c.Rope.LowFreqFactor > 0 && c.Rope.HighFreqFactor > c.Rope.LowFreqFactor && c.Rope.OriginalMaxPositions > 0);
        Assert.All(c.EosTokenIds, id => Assert.InRange(id, 0, c.VocabSize - 1));
        if (c.BosTokenId is { } bos) Assert.InRange(bos, 0, c.VocabSize - 1);
        Assert.True(c.SlidingWindow is null or > 0);
        Assert.All(c.Rope.InverseFrequencies(), f => Assert.True(float.IsFinite(f)));

        // No wrapping or rounding: an integer field read is the number the file holds.
        var json = JsonNode.Parse(bytes)!.AsObject();
        foreach (var (field, value) in new[] { ("vocab_size", c.VocabSize), ("hidden_size", c.HiddenSize), ("num_hidden_layers", c.Layers), ("intermediate_size", c.IntermediateSize) })
            Assert.Equal((double)value, json[field]!.GetValue<double>());
    }

    private static byte[] Mutate(string valid, Random random)
    {
        var json = JsonNode.Parse(valid)!.AsObject();
        for (var edits = random.Next(1, 4); edits > 0; edits--) Edit(json, random);
        var text = json.ToJsonString();
        switch (random.Next(8))
        {
            case 0: // a duplicated key
                var field = Fields[random.Next(Fields.Length)].Split('.')[0];
                return Encoding.UTF8.GetBytes(text.Insert(1, $"\"{field}\": {Values[random.Next(Values.Length)]}, "));
            case 1: // invalid UTF-8 inside a string
                var at = text.IndexOf("\"llama\"", StringComparison.Ordinal);
                var utf8 = Encoding.UTF8.GetBytes(text);
                return at < 0 ? utf8 : [.. utf8[..(at + 1)], 0xC3, 0x28, .. utf8[(at + 1)..]];
            case 2: // a lone surrogate escape
                return Encoding.UTF8.GetBytes(text.Replace("\"silu\"", "\"si\\udc00lu\""));
            default:
                return Encoding.UTF8.GetBytes(text);
        }
    }

    // Replace, remove or nest one field; raw values (1e400, 2^63) go in as JSON text.
    private static void Edit(JsonObject json, Random random)
    {
        var path = Fields[random.Next(Fields.Length)].Split('.');
        var parent = json;
        if (path.Length == 2)
        {
            if (json["rope_scaling"] is not JsonObject scaling)
            {
                scaling = JsonNode.Parse(Values[^3])!.AsObject();
                json["rope_scaling"] = scaling;
            }
            parent = scaling;
        }
        var name = path[^1];
        switch (random.Next(5))
        {
            case 0:
                parent.Remove(name);
                break;
            case 1:
                parent[name] = new JsonObject { [name] = JsonNode.Parse(Values[random.Next(Values.Length)]) };
                break;
            default:
                parent[name] = JsonNode.Parse(Values[random.Next(Values.Length)]);
                break;
        }
    }
}
