using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Tests.Checkpoints;
using Kiln.Weights;

namespace Kiln.Tests.Weights;

/// <summary>The recipe steps GGUF files need: deinterleave_rows (llama.cpp's q/k row order) and dequantize (Q8_0/Q4_0 blocks), and where a binder puts them.</summary>
public sealed class GgufRecipeStepsTests : IDisposable
{
    private const int Heads = 3, HeadSize = 8, Width = 5;
    private readonly TempDir _dir = new();
    private readonly Checkpoint _checkpoint;
    private readonly float[] _hf;
    private readonly byte[] _packed;

    public GgufRecipeStepsTests()
    {
        // q as Hugging Face stores it, and as llama.cpp's converter permutes it (convert_hf_to_gguf.py's
        // reshape(heads, 2, d/2, width).swapaxes(1, 2)): head row 2i + s holds Hugging Face row s·d/2 + i.
        _hf = [.. Enumerable.Range(0, Heads * HeadSize * Width).Select(i => (float)i)];
        var permuted = new float[_hf.Length];
        for (var h = 0; h < Heads; h++)
        for (var s = 0; s < 2; s++)
        for (var i = 0; i < HeadSize / 2; i++)
            Array.Copy(_hf, (h * HeadSize + s * HeadSize / 2 + i) * Width, permuted, (h * HeadSize + 2 * i + s) * Width, Width);
        var rows = new float[2 * 64];
        for (var i = 0; i < rows.Length; i++) rows[i] = MathF.Sin(i) * (i % 7);
        _packed = new byte[2 * 68];
        BlockQuantizer.QuantizeRow(rows.AsSpan(0, 64), QuantScheme.Int8, _packed.AsSpan(0, 68));
        BlockQuantizer.QuantizeRow(rows.AsSpan(64), QuantScheme.Int8, _packed.AsSpan(68));
        CraftedFiles.Checkpoint(_dir.Path,
            (new SafetensorsEntry("q", DType.F32, [Heads * HeadSize, Width]), CraftedFiles.Floats(permuted)),
            (new SafetensorsEntry("v", DType.F32, [2, Width]), CraftedFiles.Floats(new float[2 * Width])),
            (new SafetensorsEntry("blocks", DType.U8, [2, 68]), _packed),
            (new SafetensorsEntry("four", DType.U8, [4, 2]), [0, 0, 1, 1, 2, 2, 3, 3]));
        _checkpoint = Checkpoint.Open(_dir.Path);
    }

    public void Dispose()
    {
        _checkpoint.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public void Deinterleave_by_the_head_size_restores_the_hugging_face_rows()
    {
        using var data = Run(LoadRecipe.FromSource("q").Then(new DeinterleaveRowsStep(HeadSize)), DType.F32, [Heads * HeadSize, Width]);
        Assert.True(data.IsCopy);
        Assert.Equal(_hf, CraftedFiles.ToFloats(data.Bytes));
    }

    [Fact]
    public void Deinterleave_applies_only_to_the_tensors_it_names()
    {
        var recipe = new LoadRecipe(["q", "v"], [new DeinterleaveRowsStep(HeadSize, [0]), new ConcatStep(0)]);
        using var data = Run(recipe, DType.F32, [Heads * HeadSize + 2, Width]);
        Assert.Equal([.. _hf, .. new float[2 * Width]], CraftedFiles.ToFloats(data.Bytes));
        Assert.Equal("source(q, v) |> deinterleave_rows(group=8, only=[0]) |> concat(dim=0) |> cast(f32)", recipe.Then(new CastStep(DType.F32)).ToString());
    }

    [Fact]
    public void Deinterleave_moves_rows_of_bytes_whole()
    {
        using var data = Run(LoadRecipe.FromSource("four").Then(new DeinterleaveRowsStep(4)), DType.U8, [4, 2]);
        Assert.Equal([0, 0, 2, 2, 1, 1, 3, 3], data.Bytes.ToArray());
    }

    [Fact]
    public void Dequantize_gives_the_weights_the_blocks_stand_for()
    {
        using var data = Run(LoadRecipe.FromSource("blocks").Then(new DequantizeStep(QuantScheme.Int8)), DType.F32, [2, 64]);
        var expected = new float[128];
        BlockQuantizer.DequantizeRow(_packed.AsSpan(0, 68), QuantScheme.Int8, expected.AsSpan(0, 64));
        BlockQuantizer.DequantizeRow(_packed.AsSpan(68), QuantScheme.Int8, expected.AsSpan(64));
        Assert.Equal(expected, CraftedFiles.ToFloats(data.Bytes));
    }

    public static TheoryData<string, string> Refusals => new()
    {
        { "odd group", "step 1 deinterleave_rows(group=3): group 3 is not an even number of rows" },
        { "partial group", "step 1 deinterleave_rows(group=16): needs rows in whole groups of 16, found shape [24, 5]" },
        { "only out of range", "step 1 deinterleave_rows(group=8, only=[1]): only [1] does not name distinct tensors of the 1" },
        { "dequantize floats", "step 1 dequantize(int8): needs u8 rows of whole 34-byte blocks, found f32 [24, 5]" },
        { "dequantize partial block", "step 1 dequantize(int4_sym): needs u8 rows of whole 18-byte blocks, found u8 [2, 68]" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Steps_that_do_not_fit_the_tensors_are_refused_from_the_headers(string what, string expected)
    {
        var recipe = what switch
        {
            "odd group" => LoadRecipe.FromSource("q").Then(new DeinterleaveRowsStep(3)),
            "partial group" => LoadRecipe.FromSource("q").Then(new DeinterleaveRowsStep(16)),
            "only out of range" => LoadRecipe.FromSource("q").Then(new DeinterleaveRowsStep(8, [1])),
            "dequantize floats" => LoadRecipe.FromSource("q").Then(new DequantizeStep(QuantScheme.Int8)),
            _ => LoadRecipe.FromSource("blocks").Then(new DequantizeStep(QuantScheme.Int4Sym)),
        };
        var e = Assert.Throws<KilnException>(() => RecipeShapes.Infer([.. recipe.Sources.Select(s => _checkpoint.Tensors[s])], recipe));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Blocks_stay_blocks_through_row_steps_and_are_dequantized_before_the_others()
    {
        var rows = new LoadRecipe(["w"], [new DeinterleaveRowsStep(8), new SliceStep(0, 8, 8)]);
        var dequantized = StoredBlocks.Dequantized(rows, QuantScheme.Int8);
        Assert.Equal("source(w) |> deinterleave_rows(group=8) |> slice(dim=0, start=8, length=8) |> dequantize(int8)", dequantized.ToString());
        Assert.Equal((rows.ToString(), QuantScheme.Int8), StoredBlocks.Packed(dequantized) is var (r, s) ? (r.ToString(), s) : default);

        // A slice of the inputs (a row-parallel rank's share) cannot cut blocks: it takes floats.
        var columns = StoredBlocks.Dequantized(LoadRecipe.FromSource("w").Then(new SliceStep(1, 0, 32)), QuantScheme.Int4Sym);
        Assert.Equal("source(w) |> dequantize(int4_sym) |> slice(dim=1, start=0, length=32)", columns.ToString());
        Assert.Null(StoredBlocks.Packed(columns));
        Assert.Null(StoredBlocks.Packed(LoadRecipe.FromSource("w")));
    }

    [Fact]
    public void The_steps_round_trip_through_the_graph_json()
    {
        var graph = new ModelGraph(Kiln.Ops.OpRegistry.Default);
        var recipe = new LoadRecipe(["q", "k", "v"], [new DeinterleaveRowsStep(64, [0, 1]), new ConcatStep(0), new DequantizeStep(QuantScheme.Int4Sym)]);
        var parameter = graph.AddParameter("w", DType.F32, [96, 32], recipe);
        graph.Outputs.Add(parameter.Value);
        var json = Kiln.Graph.Json.GraphSerializer.ToJson(graph);
        var compact = string.Concat(json.Where(c => !char.IsWhiteSpace(c)));
        Assert.Contains("{\"op\":\"deinterleave_rows\",\"group\":64,\"only\":[0,1]}", compact);
        Assert.Contains("{\"op\":\"dequantize\",\"scheme\":\"int4_sym\"}", compact);
        var back = Kiln.Graph.Json.GraphSerializer.FromJson(json, Kiln.Ops.OpRegistry.Default);
        Assert.Equal(recipe.ToString(), back.Parameters.Single().Recipe.ToString());
        // The new steps changed the recipe schema, so snapshots of an older Kiln are a plain miss.
        Assert.True(LoadRecipe.SchemaVersion >= 3, "deinterleave_rows and dequantize came with recipe schema 3");
    }

    private ParameterData Run(LoadRecipe recipe, DType dtype, long[] shape) => RecipeExecutor.Execute(_checkpoint, "p", recipe, dtype, shape);
}
