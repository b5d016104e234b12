namespace Kiln.Serving;

/// <summary>The engine's waiting queue is full (a server answers 429), or the engine is shutting down.</summary>
public sealed class EngineBusyException(string message, bool stopping) : Exception(message)
{
    /// <summary>True when the engine no longer takes sequences at all (shutdown), rather than for now.</summary>
    public bool Stopping { get; } = stopping;
}
