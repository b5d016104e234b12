using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Tests.Checkpoints;
using Kiln.Weights;
using Xunit;

namespace Kiln.Tests.Weights;

/// <summary>
/// nbits_layout: int4_sym blocks re-laid as MatMulNBits's data and scales stand for the same weights
/// (decoded the way that op documents), from a quantized float weight and from stored blocks; shapes it refuses; its JSON.
/// </summary>
public sealed class NBitsLayoutTests : IDisposable
{
    private const int Rows = 3, K = 96;
    private readonly TempDir _dir = new();
    private readonly Checkpoint _checkpoint;
    private readonly float[] _weights;

    public NBitsLayoutTests()
    {
        _weights = [.. Enumerable.Range(0, Rows * K).Select(i => MathF.Sin(i * 0.37f) * (1 + i % 5))];
        var blocks = new byte[Rows * QuantScheme.Int4Sym.RowBytes(K)];
        for (var r = 0; r < Rows; r++)
            BlockQuantizer.QuantizeRow(_weights.AsSpan(r * K, K), QuantScheme.Int4Sym, blocks.AsSpan(r * (int)QuantScheme.Int4Sym.RowBytes(K), (int)QuantScheme.Int4Sym.RowBytes(K)));
        CraftedFiles.Checkpoint(_dir.Path,
            (new SafetensorsEntry("w", DType.F32, [Rows, K]), CraftedFiles.Floats(_weights)),
            (new SafetensorsEntry("blocks", DType.U8, [Rows, QuantScheme.Int4Sym.RowBytes(K)]), blocks),
            (new SafetensorsEntry("odd", DType.U8, [Rows, 20]), new byte[Rows * 20]));
        _checkpoint = Checkpoint.Open(_dir.Path);
    }

    public void Dispose()
    {
        _checkpoint.Dispose();
        _dir.Dispose();
    }

    [Theory]
    [InlineData("w", true)]
    [InlineData("blocks", false)]
    public void Data_and_scales_decode_to_the_int4_sym_weights(string source, bool quantize)
    {
        var recipe = LoadRecipe.FromSource(source);
        if (quantize) recipe = recipe.Then(new QuantizeStep(QuantScheme.Int4Sym));
        const int blocks = K / QuantSchemes.BlockSize;
        using var data = RecipeExecutor.Execute(_checkpoint, "p.nbits_data", recipe.Then(new NBitsLayoutStep(NBitsPart.Data)), DType.U8, [Rows, blocks, 16]);
        using var scales = RecipeExecutor.Execute(_checkpoint, "p.nbits_scales", recipe.Then(new NBitsLayoutStep(NBitsPart.Scales)), DType.F32, [Rows, blocks]);

        var expected = new float[Rows * K];
        using (var packed = RecipeExecutor.Execute(_checkpoint, "p", recipe, DType.U8, [Rows, QuantScheme.Int4Sym.RowBytes(K)]))
            for (var r = 0; r < Rows; r++)
                BlockQuantizer.DequantizeRow(packed.Bytes.Slice(r * (int)QuantScheme.Int4Sym.RowBytes(K), (int)QuantScheme.Int4Sym.RowBytes(K)), QuantScheme.Int4Sym, expected.AsSpan(r * K, K));
        // MatMulNBits: weight i of a block is nibble i of its 16 bytes, low nibble first; w = scale · (q − 8).
        var bytes = data.Bytes;
        var scale = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(scales.Bytes);
        for (var r = 0; r < Rows; r++)
        for (var i = 0; i < K; i++)
        {
            var (block, within) = (r * blocks + i / 32, i % 32);
            var q = within % 2 == 0 ? bytes[block * 16 + within / 2] & 0xF : bytes[block * 16 + within / 2] >> 4;
            Assert.Equal(expected[r * K + i], scale[block] * (q - 8));
        }
        Assert.Contains(expected, w => w != 0);
    }

    [Fact]
    public void Rows_that_are_not_int4_sym_blocks_are_refused_naming_the_parameter_and_step()
    {
        var error = Assert.Throws<KilnException>(() =>
            RecipeExecutor.Execute(_checkpoint, "p.nbits_data", LoadRecipe.FromSource("odd").Then(new NBitsLayoutStep(NBitsPart.Data)), DType.U8, [Rows, 1, 16]));
        Assert.Contains("p.nbits_data", error.Message);
        Assert.Contains("nbits_layout(data): needs u8 [n, blocks · 18] int4_sym rows, found u8 [3, 20]", error.Message);
        Assert.Throws<KilnException>(() =>
            RecipeExecutor.Execute(_checkpoint, "p.nbits_scales", LoadRecipe.FromSource("w").Then(new NBitsLayoutStep(NBitsPart.Scales)), DType.F32, [Rows, 3]));
    }

    [Fact]
    public void The_step_round_trips_through_the_graph_json_by_name()
    {
        var graph = new ModelGraph(Kiln.Ops.OpRegistry.Default);
        var recipe = LoadRecipe.FromSource("w").Then(new QuantizeStep(QuantScheme.Int4Sym)).Then(new NBitsLayoutStep(NBitsPart.Scales));
        graph.Outputs.Add(graph.AddParameter("w.nbits_scales", DType.F32, [Rows, 3], recipe).Value);
        var json = Kiln.Graph.Json.GraphSerializer.ToJson(graph);
        Assert.Contains("{\"op\":\"nbits_layout\",\"part\":\"scales\"}", string.Concat(json.Where(c => !char.IsWhiteSpace(c))));
        var back = Kiln.Graph.Json.GraphSerializer.FromJson(json, Kiln.Ops.OpRegistry.Default);
        Assert.Equal("source(w) |> quantize(int4_sym) |> nbits_layout(scales)", back.Parameters.Single().Recipe.ToString());
    }
}
