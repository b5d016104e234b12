using System.Text.Json;

namespace Kiln.Cache;

/// <summary>
/// Content hashes (<see cref="ChunkedHash"/>) of checkpoint files (the content the weights tier is keyed by) and of the weights tier's own
/// files (their check on a hit), memoized in &lt;root&gt;/content-hashes.json by <see cref="FileIdentity"/>
/// so that an unchanged file is never read again; any write to a file changes its identity (ctime) and so invalidates its record. A memo that
/// cannot be read is an empty one: a file is then hashed again, never trusted on a damaged record.
/// </summary>
public static unsafe class ContentHashes
{
    public const string MemoFile = "content-hashes.json";

    // A record is about 150 bytes; the memo keeps the most recent ones.
    private const int MaxRecords = 4096;
    private const int MaxMemoBytes = 1 << 20;

    /// <summary>
    /// The content hash (32 lowercase hex digits) of each of <paramref name="paths"/>. The memo is updated
    /// when <paramref name="writable"/>. A file that changes while it is hashed is an <see cref="IOException"/>.
    /// <paramref name="threads"/>: as <see cref="ChunkedHash.Of(byte*, long, bool, int)"/>.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Of(string root, IEnumerable<string> paths, bool writable, int threads = 0)
    {
        var known = new Dictionary<FileIdentity, ContentHashRecord>();
        foreach (var r in Read(Path.Combine(root, MemoFile))) known[r.Identity] = r;
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var hashed = new List<ContentHashRecord>();
        foreach (var path in paths)
        {
            var before = FileIdentity.Of(path);
            if (known.TryGetValue(before, out var record))
            {
                result[path] = record.Xxh3;
                continue;
            }
            var hash = Hash(path, threads);
            if (FileIdentity.Of(path) != before) throw new IOException($"{path} changed while it was hashed");
            result[path] = hash;
            hashed.Add(ContentHashRecord.From(before, hash));
            known[before] = hashed[^1];
        }
        if (hashed.Count > 0 && writable) Update(root, hashed);
        return result;
    }

    /// <summary>The memoized hash of the file in state <paramref name="identity"/>, if one was recorded.</summary>
    public static string? Known(string root, FileIdentity identity) =>
        Read(Path.Combine(root, MemoFile)).LastOrDefault(r => r.Identity == identity)?.Xxh3;

    /// <summary>Records that the file in state <paramref name="identity"/> has hash <paramref name="xxh3"/> (e.g. as it was written).</summary>
    public static void Remember(string root, FileIdentity identity, string xxh3) => Update(root, [ContentHashRecord.From(identity, xxh3)]);

    // In-process half of the memo's lock: a second thread would otherwise find the file lock taken and poll for it.
    private static readonly Lock MemoLock = new();

    // Adds records (replacing any of the same file) by reading, changing and writing the memo under one lock, in this
    // process and between processes: one start's weights and tokenizer tiers hash at the same time, and an update lost to
    // a race would cost reading the whole checkpoint again on the next start. Without the lock, nothing is recorded.
    private static void Update(string root, IReadOnlyList<ContentHashRecord> records)
    {
        lock (MemoLock)
        {
            try
            {
                using var guard = CacheLock.Acquire(root, "content-hashes", TimeSpan.FromSeconds(5));
                if (guard is null) return;
                var memoPath = Path.Combine(root, MemoFile);
                var memo = Read(memoPath);
                foreach (var record in records)
                {
                    memo.RemoveAll(r => r.Device == record.Device && r.Inode == record.Inode);
                    memo.Add(record);
                }
                Write(root, memoPath, memo.TakeLast(MaxRecords).ToList());
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // An unrecorded hash costs a rehash next time, nothing else.
            }
        }
    }

    /// <summary>The content hash of a whole file (<see cref="ChunkedHash"/>), mapped and hashed on <paramref name="threads"/> (0: every core).</summary>
    public static string Hash(string path, int threads = 0)
    {
        // Disposed by the mapping too, which takes it over: a second dispose does nothing.
        using var stream = RegularFile.OpenRead(path);
        if (stream.Length == 0) return ChunkedHash.Of(stream);
        using var mapped = Checkpoints.MappedFile.Map(path, stream);
        return ChunkedHash.Of((byte*)mapped.Address, mapped.Length, releaseChunks: true, threads);
    }

    /// <summary>The content hash of the rest of <paramref name="stream"/> (<see cref="ChunkedHash"/>).</summary>
    public static string Hash(Stream stream) => ChunkedHash.Of(stream);

    private static List<ContentHashRecord> Read(string memoPath)
    {
        try
        {
            using var stream = FileStatus.OpenRegularFile(memoPath, MemoFile);
            if (stream.Length > MaxMemoBytes) return [];
            var bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
            var memo = JsonSerializer.Deserialize(StrictUtf8.Decode(bytes, MemoFile), CacheJsonContext.Default.ContentHashMemo);
            // Hashes of another definition would give other keys than this Kiln's: the files are hashed again.
            if (memo?.Scheme != ChunkedHash.Scheme) return [];
            return memo.Files.Where(r => r.Xxh3.Length == 32 && r.Xxh3.All(char.IsAsciiHexDigitLower)).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or CorruptEntryException or ArgumentException)
        {
            return [];
        }
    }

    // Written aside and renamed over the memo, so a reader sees the old memo or the new one, never half of one.
    private static void Write(string root, string memoPath, List<ContentHashRecord> records)
    {
        var temporary = Path.Combine(root, $".{MemoFile}.{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = PrivateFiles.CreateNew(temporary))
            {
                JsonSerializer.Serialize(stream, new ContentHashMemo(ChunkedHash.Scheme, records), CacheJsonContext.Default.ContentHashMemo);
                stream.Flush(flushToDisk: true);
            }
            DurableFiles.Rename(temporary, memoPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // An unwritten memo costs a rehash next time, nothing else.
            try { File.Delete(temporary); } catch (Exception d) when (d is IOException or UnauthorizedAccessException) { }
        }
    }
}

/// <summary>content-hashes.json: the content hash (of definition <paramref name="Scheme"/>) of each file identity seen.</summary>
public sealed record ContentHashMemo(string? Scheme, List<ContentHashRecord> Files);

/// <summary>One file identity (<see cref="FileIdentity"/>) and the XXH3-128 of its bytes.</summary>
public sealed record ContentHashRecord(ulong Device, ulong Inode, long Size, long MtimeNs, long CtimeNs, string Xxh3)
{
    [System.Text.Json.Serialization.JsonIgnore]
    public FileIdentity Identity => new(Device, Inode, Size, MtimeNs, CtimeNs);

    public static ContentHashRecord From(FileIdentity id, string xxh3) => new(id.Device, id.Inode, id.Size, id.MtimeNs, id.CtimeNs, xxh3);
}
