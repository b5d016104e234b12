namespace Kiln.Models;

/// <summary>
/// The largest sizes a config.json may ask for, whatever the family: far above any real model, low enough
/// that every weight tensor has fewer than 2^45 elements and every size is exact in 64-bit arithmetic.
/// </summary>
public static class ConfigLimits
{
    /// <summary>Widths (hidden size, intermediate size, heads x head dimension) above this are refused: the largest real models use about 50,000.</summary>
    public const int MaxWidth = 1 << 20;

    /// <summary>Vocabularies above this are refused (real vocabularies are up to about 260,000).</summary>
    public const int MaxVocab = 1 << 24;

    /// <summary>Layer counts above this are refused (real models have up to about 130).</summary>
    public const int MaxLayers = 1 << 12;

    /// <summary>Context lengths above this are refused: the graph computes positions in float32, exact only up to 2^24.</summary>
    public const int MaxPositions = 1 << 24;
}
