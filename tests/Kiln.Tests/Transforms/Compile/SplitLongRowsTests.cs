using Kiln.Runtime;
using Kiln.Transforms;
using Kiln.Transforms.Compile;
using Kiln.Weights;
using Xunit;
using Xunit.Abstractions;

namespace Kiln.Tests.Transforms.Compile;

/// <summary>
/// split_long_rows: with the longest row set to 32 weights (so the small test checkpoints have long rows),
/// every kiln_linear over a weight only it reads takes that weight in column blocks made by a load-recipe step,
/// a tied embedding stays whole, and logits and greedy text match the default pipeline (whose rows are all
/// short here) on every family; the block count for real row lengths; a longest row below the vector step refused.
/// </summary>
public sealed class SplitLongRowsTests(ITestOutputHelper output)
{
    private const float Tolerance = 1e-4f;

    private const string Short = "split_long_rows.longest_row=32";

    [Theory]
    [InlineData(5632, 4096, 2)]   // Llama down projection (TinyLlama, the 1.07B bench model): 2 × 2816
    [InlineData(14336, 4096, 4)]  // Llama-3-8B: 4 × 3584
    [InlineData(11008, 4096, 4)]  // Llama-2-7B: 3 parts are not whole, 4 × 2752
    [InlineData(8192, 4096, 2)]
    [InlineData(4096, 4096, 0)]   // short enough
    [InlineData(4099, 4096, 0)]   // prime: no equal parts
    [InlineData(4128, 4096, 3)]   // 2 × 2064 are not whole vectors; 3 × 1376 are
    public void Parts_are_the_fewest_equal_blocks_of_whole_vectors_short_enough(long k, int longestRow, int parts) =>
        Assert.Equal(parts, SplitLongRowsTransform.Parts(k, longestRow));

    [Theory]
    [MemberData(nameof(UseKilnLinearTests.Families), MemberType = typeof(UseKilnLinearTests))]
    public void Long_rows_are_read_in_column_blocks_with_the_same_logits(string family)
    {
        using var temp = new TempDir();
        var directory = FamilyModels.Directory(family, temp);
        using var split = LoadedModel.Load(directory, new Kiln.Compile.SessionSettings(IntraOpThreads: 2), PipelineConfig.Load(sets: [Short]));
        using var whole = LoadedModel.Load(directory);
        var graph = split.Graph;
        Assert.DoesNotContain(whole.Graph.Nodes, n => n.Op == "kiln_linear" && n.Inputs[1].Shape.Rank == 3);

        var products = graph.Nodes.Where(n => n.Op == "kiln_linear").ToList();
        var tied = split.Checkpoint.Config["tie_word_embeddings"]?.GetValue<bool>() == true;
        foreach (var product in products)
        {
            var weight = graph.Parameters.Single(p => ReferenceEquals(p.Value, product.Inputs[1]));
            var k = product.Inputs[0].Shape[^1].Size;
            // A weight something else reads too (the tied embedding's gather) stays whole.
            var expected = weight.Value.Users.All(u => u.Op == "kiln_linear") ? SplitLongRowsTransform.Parts(k, 32) : 0;
            if (expected == 0)
            {
                Assert.Equal(2, weight.Value.Shape.Rank);
                continue;
            }
            Assert.Equal([expected, product.Output.Shape[^1].Size, k / expected], weight.Value.Shape.ToSizes());
            Assert.EndsWith(".column_blocks", weight.Name, StringComparison.Ordinal);
            Assert.Equal(new SplitColumnsStep(expected), weight.Recipe.Steps[^1]);
        }
        Assert.Contains(products, p => p.Inputs[1].Shape.Rank == 3);
        if (tied) Assert.Contains(products, p => p.Inputs[1].Users.Any(u => u.Op != "kiln_linear") && p.Inputs[1].Shape.Rank == 2);

        var ids = Enumerable.Range(0, 12).Select(i => (long)((i * 37 + 1) % split.VocabSize)).ToArray();
        var positions = Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray();
        var difference = split.Forward(ids, positions).Zip(whole.Forward(ids, positions), (a, e) => Math.Abs(a - e)).Max();
        output.WriteLine($"{family}: max |column blocks - whole rows| over {ids.Length} positions = {difference}");
        Assert.True(difference <= Tolerance, $"max difference {difference}");

        var options = new GenerationOptions(32, new SamplingOptions(), new HashSet<int>());
        var prompt = ids.Take(5).Select(i => (int)i).ToArray();
        Assert.Equal(new Generator(whole).Generate(prompt, options).NewIds, new Generator(split).Generate(prompt, options).NewIds);
    }

    [Fact]
    public void A_longest_row_below_the_vector_step_is_refused_naming_the_setting()
    {
        var error = Assert.Throws<KilnException>(() => LoadedModel.Load(TestPaths.Oracle("llama_gqa"), pipeline: PipelineConfig.Load(sets: ["split_long_rows.longest_row=16"])));
        Assert.Contains("split_long_rows.longest_row: 16 is below 32", error.Message);
    }
}
