namespace Kiln.Compile;

/// <summary>An int64 tensor fed to a session, e.g. input_ids of shape [1, seq].</summary>
public sealed record Int64Tensor(long[] Data, long[] Shape);

/// <summary>A float32 tensor read back from a session, e.g. logits of shape [1, seq, vocab].</summary>
public sealed record FloatTensor(float[] Data, long[] Shape);
