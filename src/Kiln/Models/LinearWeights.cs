namespace Kiln.Models;

/// <summary>The weight [out, in] and the optional bias [out] of one linear layer (PyTorch's nn.Linear).</summary>
public sealed record LinearWeights(ModelWeight Weight, ModelWeight? Bias);
