using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Tests.Checkpoints;
using Kiln.Weights;

namespace Kiln.Tests.Weights;

/// <summary>The offset recipe step: value + each element, in float32, from f32, f16 or bf16 (Gemma's 1 + w).</summary>
public sealed class OffsetStepTests
{
    [Theory]
    [InlineData("f32")]
    [InlineData("bf16")]
    [InlineData("f16")]
    public void Adds_in_float32_and_gives_float32(string dtypeName)
    {
        Assert.True(DTypeExtensions.TryParse(dtypeName, out var dtype));
        // Values a 16-bit type holds exactly; 1 + 2^-12 is not a bf16 or f16 value, only an f32 one.
        float[] values = [0f, 1f / 4096, -0.5f, 3f];
        using var temp = new TempDir();
        CraftedFiles.Checkpoint(temp.Path, (new SafetensorsEntry("w", dtype, [values.Length]), Bytes(values, dtype)));
        using var checkpoint = Checkpoint.Open(temp.Path);
        var recipe = LoadRecipe.FromSource("w").Then(new OffsetStep(1.0));
        var (resultType, shape) = RecipeShapes.Infer([checkpoint.Tensor("w")], recipe);
        Assert.Equal(DType.F32, resultType);
        Assert.Equal([4L], shape);

        using var result = RecipeExecutor.Execute(checkpoint, "w", recipe, DType.F32, [4]);
        Assert.Equal([1f, 1f + 1f / 4096, 0.5f, 4f], System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(result.Bytes).ToArray());
    }

    private static byte[] Bytes(float[] values, DType dtype) => dtype switch
    {
        DType.F32 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray(),
        DType.F16 => values.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray(),
        _ => values.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToInt32Bits(v) >> 16))).ToArray(),
    };
}
