namespace Kiln.Weights;

/// <summary>How far the quantize steps of a weight load are: weights quantized so far of the total to quantize.</summary>
public readonly record struct QuantizeProgress(long Done, long Total);
