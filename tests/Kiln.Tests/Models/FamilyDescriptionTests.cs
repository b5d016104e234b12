using System.Runtime.InteropServices;
using Kiln.Checkpoints;
using Kiln.Export;
using Kiln.Graph;
using Kiln.Models;
using Kiln.Ops;
using Kiln.Tests.Checkpoints;
using Kiln.Weights;

namespace Kiln.Tests.Models;

/// <summary>
/// A family is described once: the trace, the test checkpoint writer and config validation all derive
/// from its config reads and its weight layout, so they cannot disagree on a tensor name, a shape or a rule.
/// </summary>
public sealed class FamilyDescriptionTests
{
    private static readonly TestModelOptions Small = new("llama", Layers: 2, Hidden: 32, Heads: 4, KvHeads: 2, Intermediate: 48, Vocab: 50,
        DType: DType.F32, Seed: 1, MaxPositions: 64);

    public static TheoryData<string> Variants => [.. Cases.Keys];

    private static readonly Dictionary<string, TestModelOptions> Cases = new()
    {
        ["llama"] = Small,
        ["llama_tied"] = Small with { TieEmbeddings = true },
        ["llama_biases"] = Small with { AttentionBias = true, MlpBias = true, RopeScaling = TestRopeScaling.Llama3(8, 1, 4, 32) },
        ["mistral_window"] = Small with { ModelType = "mistral", SlidingWindow = 8 },
        ["qwen2_biases"] = Small with { ModelType = "qwen2", TieEmbeddings = true },
        ["qwen3_norms"] = Small with { ModelType = "qwen3", ExplicitHeadDim = 16, AttentionBias = true },
        ["llama3_8b"] = TestModelOptions.Llama3_8B,
        ["gpt2"] = Small with { Family = "gpt2", ModelType = "gpt2", KvHeads = 4 },
        ["phi3"] = Small with { Family = "phi3", ModelType = "phi3" },
        ["gemma_mqa"] = Small with { Family = "gemma", ModelType = "gemma", KvHeads = 1, ExplicitHeadDim = 16, AttentionBias = true },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void The_trace_reads_exactly_the_tensors_the_writer_writes(string variant)
    {
        var options = Cases[variant];
        var (_, model) = TestModelConfig.Describe(options);
        var graph = model.Trace(OpRegistry.Core);
        var written = RandomCheckpointWriter.Tensors(options);

        // Every tensor written is read, and every parameter is made from written tensors with the shape its recipe gives.
        Assert.Equal(written.Select(t => t.Name).Order(StringComparer.Ordinal),
            graph.Parameters.SelectMany(p => p.Recipe.Sources).Distinct().Order(StringComparer.Ordinal));
        var shapes = written.ToDictionary(t => t.Name, t => t.Shape);
        Assert.All(graph.Parameters, p =>
            Assert.Equal(RecipeShapes.Infer([.. p.Recipe.Sources.Select(s => shapes[s])], p.Recipe), p.Value.Shape.ToSizes()));
        // The trace reads every weight the layout declares, and no other.
        Assert.Equal(model.Layout.Weights.Select(w => w.Name).Order(StringComparer.Ordinal), graph.Parameters.Select(p => p.Name).Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void The_written_config_is_read_back_as_the_model_it_was_written_for(string variant)
    {
        var options = Cases[variant];
        var (config, model) = TestModelConfig.Describe(options);

        // The plain reader of any config.json (no test values) accepts the file and sees the same model.
        var read = ModelFactory.Read(config, "config.json");
        Assert.Equal(model.Facts, read.Facts);
        Assert.Equal(model.Layout.Tensors.Select(t => (t.Name, string.Join(",", t.Shape), t.Init)),
            read.Layout.Tensors.Select(t => (t.Name, string.Join(",", t.Shape), t.Init)));
        Assert.Equal(GraphPrinter.Print(model.Trace(OpRegistry.Core)), GraphPrinter.Print(read.Trace(OpRegistry.Core)));
        Assert.Equal((options.Layers, options.Hidden, options.Heads, options.KvHeads, options.HeadDim, options.Vocab, options.MaxPositions),
            (read.Facts.Layers, read.Facts.Hidden, read.Facts.Heads, read.Facts.KvHeads, read.Facts.HeadDim, read.Facts.VocabSize, read.Facts.ContextLength));
    }

    [Fact]
    public void One_read_writes_the_field_checks_it_and_gives_the_trace_its_value()
    {
        // max_position_embeddings is read once (LlamaConfig.Read): testmodel writes --max-positions there, the graph's
        // facts carry it, and the range check that refuses it in any config.json refuses the option, by its name.
        var (config, model) = TestModelConfig.Describe(Small with { MaxPositions = 96 });
        Assert.Equal(96, (int)config["max_position_embeddings"]!);
        Assert.Equal(96, model.Trace(OpRegistry.Core).Model!.ContextLength);

        var option = Assert.Throws<KilnException>(() => TestModelConfig.Describe(Small with { MaxPositions = ConfigLimits.MaxPositions + 1 }));
        config["max_position_embeddings"] = ConfigLimits.MaxPositions + 1;
        var file = Assert.Throws<KilnException>(() => ModelFactory.Read(config, "config.json"));
        Assert.Equal($"max_positions: {ConfigLimits.MaxPositions + 1} is above the supported maximum of {ConfigLimits.MaxPositions}", option.Message);
        Assert.Equal($"config.json: max_position_embeddings: {ConfigLimits.MaxPositions + 1} is above the supported maximum of {ConfigLimits.MaxPositions}", file.Message);
    }

    [Fact]
    public void The_registry_finds_families_by_model_type_and_names_config_json_for_an_unknown_one()
    {
        Assert.Equal(["llama", "gpt2", "phi3", "gemma"], FamilyRegistry.Families.Select(f => f.Name));
        Assert.Equal(["llama", "mistral", "qwen2", "qwen3", "gpt2", "phi3", "gemma"], FamilyRegistry.ModelTypes);
        Assert.IsType<Kiln.Models.Gpt2.Gpt2Model>(ModelFactory.Read(new() { ["model_type"] = "gpt2" }, "m/config.json"));
        // A Phi-3 or Gemma config without sizes fails on its first required size, read by its own family.
        Assert.Contains("vocab_size: is required", Assert.Throws<KilnException>(() => ModelFactory.Read(new() { ["model_type"] = "phi3" }, "m/config.json")).Message);
        Assert.Contains("vocab_size: is required", Assert.Throws<KilnException>(() => ModelFactory.Read(new() { ["model_type"] = "gemma" }, "m/config.json")).Message);
        var e = Assert.Throws<KilnException>(() => ModelFactory.Read(new() { ["model_type"] = "bloom" }, "m/config.json"));
        Assert.Equal("m/config.json: model_type: unsupported model type 'bloom' (supported: llama, mistral, qwen2, qwen3, gpt2, phi3, gemma)", e.Message);
    }

    [Fact]
    public void A_weight_made_by_a_recipe_is_traced_with_the_recipes_shape_and_loads_its_values()
    {
        // GPT-2's layout: a Conv1D weight stored [in, out] with the q, k and v columns side by side.
        var layout = new WeightLayout();
        var fused = layout.Tensor("h.0.attn.c_attn.weight", TensorInit.AroundZero, 4, 12);
        var k = layout.Weight("h.0.attn.k.weight", LoadRecipe.FromSource(fused.Name).Then(new SliceStep(1, 4, 4)).Then(new TransposeStep()));
        Assert.Equal([fused], layout.Tensors);
        Assert.Equal([4L, 4], k.Shape);
        Assert.Throws<ArgumentException>(() => layout.Weight("evil", LoadRecipe.FromSource("h.0.attn.c_proj.weight")));

        var t = new Tracer(OpRegistry.Core);
        var x = t.Input("x", DType.F32, Dim.Sym("batch"), Dim.Of(4));
        t.Output(t.Op("linear", [x, t.Parameter(k)]));
        t.Output(t.Op("linear", [x, t.Parameter(k)]));
        var parameter = Assert.Single(t.Graph.Parameters);
        Assert.Equal((k.Name, k.Recipe), (parameter.Name, parameter.Recipe));

        using var dir = new TempDir();
        var values = Enumerable.Range(0, 48).Select(i => (float)i).ToArray();
        CraftedFiles.Safetensors(dir.File("model.safetensors"), (new SafetensorsEntry(fused.Name, DType.F32, fused.Shape), MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));
        File.WriteAllText(dir.File("config.json"), "{}");
        using var checkpoint = Checkpoint.Open(dir.Path);
        using var loaded = RecipeExecutor.Execute(checkpoint, parameter.Name, parameter.Recipe, DType.F32, k.Shape);
        var kValues = MemoryMarshal.Cast<byte, float>(loaded.Bytes).ToArray();
        // k[o, i] is column 4 + o of row i of the stored [in, out] tensor.
        for (var o = 0; o < 4; o++)
            for (var i = 0; i < 4; i++)
                Assert.Equal(values[i * 12 + 4 + o], kValues[o * 4 + i]);
    }
}
