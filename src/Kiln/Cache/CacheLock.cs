namespace Kiln.Cache;

/// <summary>
/// An exclusive lock between processes on one key (an advisory lock on &lt;root&gt;/locks/&lt;key&gt;.lock,
/// released by the kernel if the holder dies), so one process compiles while the others wait.
/// </summary>
public sealed class CacheLock : IDisposable
{
    private readonly FileStream _stream;

    private CacheLock(FileStream stream) => _stream = stream;

    /// <summary>Waits up to <paramref name="timeout"/>; null when another process still holds it.</summary>
    public static CacheLock? Acquire(string root, string key, TimeSpan timeout)
    {
        var directory = Path.Combine(root, "locks");
        PrivateFiles.CreateDirectory(directory);
        var path = Path.Combine(directory, key + ".lock");
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                // FileShare.None takes an exclusive flock on Linux; a second opener gets an IOException.
                return new CacheLock(PrivateFiles.OpenOrCreate(path, FileShare.None));
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
            }
            catch (IOException)
            {
                return null;
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}
