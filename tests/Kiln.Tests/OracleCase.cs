using System.Text.Json.Nodes;

namespace Kiln.Tests;

/// <summary>One input sequence of a Hugging Face oracle case (tests/data/hf-oracle/NAME/expected.json).</summary>
public sealed record OracleSequence(int[] InputIds, float[] LastLogits, int[] ArgmaxPerPosition, int[] GreedyNewTokens);

public static class OracleCase
{
    public static IReadOnlyList<OracleSequence> Load(string name)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Oracle(name), "expected.json")))!;
        return json["sequences"]!.AsArray().Select(s => new OracleSequence(
            Ints(s!["input_ids"]!),
            s["last_logits"]!.AsArray().Select(v => (float)v!.GetValue<double>()).ToArray(),
            Ints(s["argmax_per_position"]!),
            Ints(s["greedy_new_tokens"]!))).ToArray();
    }

    private static int[] Ints(JsonNode node) => node.AsArray().Select(v => v!.GetValue<int>()).ToArray();
}
