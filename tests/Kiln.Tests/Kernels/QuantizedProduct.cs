using Kiln.Weights;
using Xunit;

namespace Kiln.Tests.Kernels;

/// <summary>
/// The reference for quantized products: a double-precision product of x with the dequantized weight,
/// and the error the kernel may add by quantizing x to int8 blocks of 32 (each |x − d·q| ≤ d/2 with
/// d = max|x of the block| / 127).
/// </summary>
public static class QuantizedProduct
{
    /// <summary>Packs random weights [n, k] in <paramref name="scheme"/> and returns the packed bytes and the weights they stand for.</summary>
    public static (byte[] Packed, float[] Dequantized) Pack(float[] w, int n, int k, QuantScheme scheme)
    {
        var rowBytes = (int)scheme.RowBytes(k);
        var packed = new byte[n * rowBytes];
        var dequantized = new float[n * k];
        for (var j = 0; j < n; j++)
        {
            BlockQuantizer.QuantizeRow(w.AsSpan(j * k, k), scheme, packed.AsSpan(j * rowBytes, rowBytes));
            BlockQuantizer.DequantizeRow(packed.AsSpan(j * rowBytes, rowBytes), scheme, dequantized.AsSpan(j * k, k));
        }
        return (packed, dequantized);
    }

    /// <summary>
    /// Asserts y[r, first..end) against Σ x·dequantized within the activation-quantization bound
    /// Σ_blocks max|x_block| / 254 · Σ_block |w| (plus float32 rounding: 1e-5 of Σ|x·w|).
    /// </summary>
    public static void AssertClose(float[] x, float[] dequantized, float[] y, int rows, int n, int k, int first, int end)
    {
        for (var r = 0; r < rows; r++)
        {
            for (var j = first; j < end; j++)
            {
                double sum = 0, magnitude = 0, bound = 0;
                for (var b = 0; b < k; b += 32)
                {
                    double max = 0, weights = 0;
                    for (var i = b; i < Math.Min(k, b + 32); i++)
                    {
                        var (xi, wi) = ((double)x[r * k + i], (double)dequantized[j * k + i]);
                        sum += xi * wi;
                        magnitude += Math.Abs(xi * wi);
                        max = Math.Max(max, Math.Abs(xi));
                        weights += Math.Abs(wi);
                    }
                    bound += max / 254 * weights;
                }
                var tolerance = bound * 1.001 + 1e-5 * magnitude + 1e-6;
                var actual = y[r * n + j];
                Assert.True(Math.Abs(actual - sum) <= tolerance, $"row {r}, column {j}: {actual}, expected {sum} ± {tolerance}");
            }
        }
    }
}
