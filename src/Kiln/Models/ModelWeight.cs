using Kiln.Weights;

namespace Kiln.Models;

/// <summary>
/// A weight the model computes with: the graph parameter of this name and shape, made from checkpoint
/// tensors by <see cref="Recipe"/>. Most weights are a stored tensor as it is (a recipe of one source);
/// a family whose checkpoint stores them otherwise (transposed, or several fused in one tensor) says so
/// in the recipe, and the trace still reads the weight it wants.
/// </summary>
public sealed record ModelWeight(string Name, long[] Shape, LoadRecipe Recipe);
