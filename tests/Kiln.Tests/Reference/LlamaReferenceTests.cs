using System.Runtime.InteropServices;
using Kiln.Checkpoints;

namespace Kiln.Tests.Reference;

/// <summary>The reference forward pass itself against Hugging Face transformers 4.47 on the oracle checkpoints.</summary>
public sealed class LlamaReferenceTests
{
    private const double Tolerance = 1e-4;

    public static TheoryData<string> Cases => ["llama_gqa", "qwen2", "mistral"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Reference_logits_match_transformers_at_every_position(string name)
    {
        var reference = LlamaReference.Load(TestPaths.Oracle(name));
        using var expected = SafetensorsFile.Open(Path.Combine(TestPaths.Oracle(name), "expected_logits.safetensors"));
        var sequences = OracleCase.Load(name);
        for (var s = 0; s < sequences.Count; s++)
        {
            var ids = sequences[s].InputIds.Select(i => (long)i).ToArray();
            var logits = reference.Forward(ids, Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray());

            var all = MemoryMarshal.Cast<byte, float>(expected.GetBytes(expected.Tensors[$"seq{s}.logits"]));
            Assert.Equal(all.Length, logits.Length);
            var worst = 0.0;
            for (var i = 0; i < logits.Length; i++) worst = Math.Max(worst, Math.Abs(logits[i] - all[i]));
            Assert.True(worst <= Tolerance, $"sequence {s}: max |reference - transformers| = {worst:E3}");
        }
    }

    [Fact]
    public void Reads_transformers_defaults_per_model_type()
    {
        var qwen3 = ReferenceConfig.Read(System.Text.Json.Nodes.JsonNode.Parse("""
            {"model_type": "qwen3", "hidden_size": 64, "num_attention_heads": 4, "vocab_size": 10,
             "intermediate_size": 8, "num_hidden_layers": 1}
            """)!.AsObject());
        Assert.Equal(128, qwen3.HeadDim);
        Assert.True(qwen3.QkNorm);
        Assert.False(qwen3.QkvBias);

        var mistral = ReferenceConfig.Read(System.Text.Json.Nodes.JsonNode.Parse("""
            {"model_type": "mistral", "hidden_size": 64, "num_attention_heads": 4, "vocab_size": 10,
             "intermediate_size": 8, "num_hidden_layers": 1, "attention_bias": true}
            """)!.AsObject());
        Assert.Equal(16, mistral.HeadDim);
        Assert.Equal(4096, mistral.SlidingWindow);
        Assert.False(mistral.QkvBias);

        var qwen2 = ReferenceConfig.Read(System.Text.Json.Nodes.JsonNode.Parse("""
            {"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4, "vocab_size": 10,
             "intermediate_size": 8, "num_hidden_layers": 1, "sliding_window": 4}
            """)!.AsObject());
        Assert.True(qwen2.QkvBias);
        Assert.False(qwen2.OutputBias);
        Assert.Null(qwen2.SlidingWindow);
    }
}
