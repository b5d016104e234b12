namespace Kiln.Server;

/// <summary>
/// Where and how `kiln serve` listens: <paramref name="Host"/> and <paramref name="Port"/> (0: any free
/// port, printed at start); <paramref name="ApiKey"/>, when set, is required as "Authorization: Bearer KEY"
/// on /v1/ routes; a request body may hold <paramref name="MaxBodyBytes"/> at most; on shutdown, running
/// requests get <paramref name="ShutdownTimeout"/> to finish.
/// </summary>
public sealed record ServerOptions(string Host = "127.0.0.1", int Port = 8000, string? ApiKey = null, long MaxBodyBytes = ServerOptions.DefaultMaxBodyBytes,
    TimeSpan? ShutdownTimeout = null)
{
    public const long DefaultMaxBodyBytes = 2 << 20;

    public static readonly TimeSpan DefaultShutdownTimeout = TimeSpan.FromSeconds(30);
}
