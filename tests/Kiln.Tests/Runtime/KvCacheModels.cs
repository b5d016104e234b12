using System.Text.Json.Nodes;
using Kiln.Checkpoints;
using Kiln.Graph;

namespace Kiln.Tests.Runtime;

/// <summary>Random-weight checkpoints for the cache tests, written once per test class.</summary>
public sealed class KvCacheModels : IDisposable
{
    private readonly TempDir _dir = new();

    public KvCacheModels()
    {
        Llama = Path.Combine(_dir.Path, "llama");
        RandomCheckpointWriter.Write(Options, Llama);
        Mistral = Path.Combine(_dir.Path, "mistral");
        RandomCheckpointWriter.Write(Options, Mistral);
        var configFile = Path.Combine(Mistral, Checkpoint.ConfigFileName);
        var config = JsonNode.Parse(File.ReadAllText(configFile))!.AsObject();
        config["model_type"] = "mistral";
        config["architectures"] = new JsonArray("MistralForCausalLM");
        config["sliding_window"] = SlidingWindow;
        File.WriteAllText(configFile, config.ToJsonString());
    }

    public const int MaxPositions = 64;

    /// <summary>Smaller than the sequences the tests run.</summary>
    public const int SlidingWindow = 5;

    public static TestModelOptions Options { get; } = new("llama", Layers: 2, Hidden: 64, Heads: 4, KvHeads: 2, Intermediate: 96, Vocab: 128,
        DType: DType.F32, Seed: 11, MaxPositions: MaxPositions);

    /// <summary>A Llama checkpoint with grouped-query attention (4 query heads, 2 key/value heads).</summary>
    public string Llama { get; }

    /// <summary>The same weights as a Mistral checkpoint with a sliding window of <see cref="SlidingWindow"/>.</summary>
    public string Mistral { get; }

    public void Dispose() => _dir.Dispose();
}
