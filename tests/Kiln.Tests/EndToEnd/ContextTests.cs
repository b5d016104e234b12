using Kiln.Checkpoints;
using Kiln.Compile;
using Kiln.Graph;
using Kiln.Runtime;
using Kiln.Tests.Cache;

namespace Kiln.Tests.EndToEnd;

/// <summary>
/// The run's context (--context, <see cref="SessionSettings.Context"/>) bounds per-position work: a huge
/// max_position_embeddings costs nothing, bad values are exit-2 errors, and the cached graph serves any context.
/// </summary>
public sealed class ContextTests
{
    // The largest context config.json may declare (2^24: positions are float32).
    private const int HugeContext = Kiln.Models.ConfigLimits.MaxPositions;
    private static readonly string[] Generate = ["generate", "--prompt-ids", "1 2 3", "--max-new-tokens", "6", "--threads", "1"];

    [Fact]
    public void A_huge_max_position_embeddings_generates_with_a_note_and_tables_for_the_capped_context()
    {
        using var dir = HugeModel();
        var result = KilnCli.Run([.. Generate, "--model", dir.Path, "--no-cache"]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Contains($"kiln: note: context capped at {SessionSettings.DefaultContextCap} of max_position_embeddings {HugeContext}; pass --context N for more",
            result.Stderr);
        // Before the context bounded the rotary tables, ONNX Runtime folded every configured row (10^8 rows took over a minute):
        // the tables are lowered for the capped context, not for max_position_embeddings.
        using var checkpoint = Checkpoint.Open(dir.Path);
        var graph = ModelCompiler.Compile(checkpoint, Kiln.Transforms.PipelineConfig.Load()).Graph;
        var context = SessionSettings.Default.ContextFor(HugeContext);
        Assert.Equal(SessionSettings.DefaultContextCap, context);
        Assert.All(RotaryLimits(graph, context), limit => Assert.Equal(SessionSettings.DefaultContextCap, limit));
    }

    [Fact]
    public void No_note_when_the_model_context_fits_or_a_context_is_asked_for()
    {
        using var dir = HugeModel();
        Assert.DoesNotContain("note", KilnCli.Run([.. Generate, "--model", dir.Path, "--no-cache", "--context", "64"]).Stderr);
        Assert.DoesNotContain("note", KilnCli.Run([.. Generate, "--no-cache"]).Stderr);
    }

    [Theory]
    [InlineData("generate", "0", "must be positive")]
    [InlineData("generate", "-5", "must be positive")]
    [InlineData("generate", "16777217", "is more than the model's context")]
    [InlineData("logits", "0", "must be positive")]
    [InlineData("logits", "16777217", "is more than the model's context")]
    public void A_bad_context_is_an_exit_2_line_naming_the_option(string command, string context, string problem)
    {
        using var dir = HugeModel();
        string[] args = command == "generate" ? Generate : ["logits", "--ids", "1 2 3"];
        var result = KilnCli.Run([.. args, "--model", dir.Path, "--no-cache", "--context", context]);
        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("kiln: error: --context: ", line);
        Assert.Contains(problem, line);
    }

    [Fact]
    public void A_prompt_longer_than_the_context_is_the_one_line_error()
    {
        using var dir = HugeModel();
        var result = KilnCli.Run("logits", "--model", dir.Path, "--no-cache", "--ids", "1 2 3 4", "--context", "3");
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("kiln: error: --ids: 4 tokens exceed the context of 3 (the run's context; max_position_embeddings is 16777216)",
            result.Stderr.Trim().Split('\n')[^1]);
    }

    [Fact]
    public void A_cached_graph_serves_every_context_with_the_same_tokens()
    {
        using var dir = HugeModel();
        using var cache = new CacheDir();
        var cold = cache.Run([.. Generate, "--model", dir.Path, "--json", "--context", "16"]);
        Assert.True(cold.ExitCode == 0, cold.Stderr);
        Assert.Contains("kiln: cache miss", cold.Stderr);
        foreach (var context in new[] { "9", "1000" })
        {
            var warm = cache.Run([.. Generate, "--model", dir.Path, "--json", "--context", context]);
            Assert.True(warm.ExitCode == 0, warm.Stderr);
            Assert.Contains("kiln: cache hit", warm.Stderr);
            Assert.Equal(NewIds(cold.Stdout), NewIds(warm.Stdout));
        }
        var byDefault = cache.Run([.. Generate, "--model", dir.Path, "--json"]);
        Assert.Contains("kiln: cache hit", byDefault.Stderr);
        Assert.Equal(NewIds(cold.Stdout), NewIds(byDefault.Stdout));
    }

    [Fact]
    public void The_rotary_tables_are_lowered_for_the_run_context_and_greedy_tokens_do_not_change()
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(Small(MaxPositions: 512), dir.Path);
        int[] prompt = [1, 2, 3, 4, 5];
        var options = new GenerationOptions(8, new SamplingOptions(), new HashSet<int>());
        using var full = LoadedModel.Load(dir.Path);
        using var short_ = LoadedModel.Load(dir.Path, new SessionSettings(Context: prompt.Length + 8));
        Assert.Equal((512, 13), (full.Context, short_.Context));
        Assert.Equal(new Generator(full).Generate(prompt, options).NewIds, new Generator(short_).Generate(prompt, options).NewIds);
        // A run stops at its context, not the model's.
        Assert.Equal("context", new Generator(short_).Generate(prompt, options with { MaxNewTokens = 20 }).StopReason);

        Assert.All(RotaryLimits(short_.Graph, 13), limit => Assert.Equal(13f, limit));
    }

    // The positions each lowered rotary table (cos and sin) is built for.
    private static IReadOnlyList<float> RotaryLimits(ModelGraph graph, int context)
    {
        var onnx = Onnx.ModelProto.Parser.ParseFrom(GraphLowering.ToOnnx(graph, context));
        var limits = onnx.Graph.Initializer.Where(t => t.Name.Contains("_cache", StringComparison.Ordinal) && t.Name.EndsWith(".limit", StringComparison.Ordinal))
            .Select(t => BitConverter.ToSingle(t.RawData.ToByteArray())).ToList();
        Assert.Equal(2, limits.Count);
        return limits;
    }

    [Theory]
    [InlineData(null, 100, 100)]
    [InlineData(null, HugeContext, SessionSettings.DefaultContextCap)]
    [InlineData(7, HugeContext, 7)]
    [InlineData(100, 100, 100)]
    public void The_context_is_the_asked_one_or_the_model_capped(int? asked, int maxPositions, int expected) =>
        Assert.Equal(expected, new SessionSettings(Context: asked).ContextFor(maxPositions));

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(101)]
    public void A_context_outside_the_model_is_an_error_naming_its_source(int asked)
    {
        var e = Assert.Throws<KilnException>(() => new SessionSettings(Context: asked, ContextSource: "ctx").ContextFor(100));
        Assert.StartsWith("ctx: ", e.Message);
    }

    private static TestModelOptions Small(int MaxPositions) =>
        new("llama", Layers: 2, Hidden: 32, Heads: 4, KvHeads: 2, Intermediate: 48, Vocab: 64, DType.F32, Seed: 3, MaxPositions: MaxPositions);

    private static TempDir HugeModel()
    {
        var dir = new TempDir();
        RandomCheckpointWriter.Write(Small(HugeContext), dir.Path);
        return dir;
    }

    private static string NewIds(string json) => System.Text.Json.Nodes.JsonNode.Parse(json)!["new_ids"]!.ToJsonString();
}
