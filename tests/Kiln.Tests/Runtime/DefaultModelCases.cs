using Xunit;
using System.Text.Json;

namespace Kiln.Tests.Runtime;

/// <summary>One prompt of models/stories260K/expected.json, as transformers tokenized and continued it.</summary>
public sealed record DefaultModelCase(string Prompt, int[] InputIds, int[] GreedyNewTokenIds, string GreedyNewText, string FullText)
{
    public override string ToString() => Prompt;

    public static IReadOnlyList<DefaultModelCase> Load()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.DefaultModel, "expected.json")));
        return [.. doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new DefaultModelCase(
            c.GetProperty("prompt").GetString()!,
            [.. c.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32())],
            [.. c.GetProperty("greedy_new_token_ids").EnumerateArray().Select(e => e.GetInt32())],
            c.GetProperty("greedy_new_text").GetString()!,
            c.GetProperty("full_text").GetString()!))];
    }

    public static TheoryData<int> Indices() => [.. Enumerable.Range(0, Load().Count)];
}
