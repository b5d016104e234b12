namespace Kiln.Models;

/// <summary>A tensor of a family's checkpoint: its Hugging Face name, its shape as stored, and how a test checkpoint fills it.</summary>
public sealed record CheckpointTensor(string Name, long[] Shape, TensorInit Init);
