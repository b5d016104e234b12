namespace Kiln.Serving;

/// <summary>Why a sequence ended.</summary>
public enum FinishReason
{
    /// <summary>A stop id (or, decided by the reader, a stop string).</summary>
    Stop,

    /// <summary>The token limit, or the context is full.</summary>
    Length,

    /// <summary>The reader cancelled it, or the engine shut down first.</summary>
    Cancelled,
}
