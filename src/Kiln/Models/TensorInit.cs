namespace Kiln.Models;

/// <summary>
/// How a random test checkpoint (<c>kiln testmodel</c>) fills a tensor, as transformers' own initializers
/// would: most weights and every bias near zero; a norm's gain near one, so that it scales, not erases.
/// </summary>
public enum TensorInit
{
    AroundZero,
    AroundOne,
}
