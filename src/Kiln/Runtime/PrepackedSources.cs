using Kiln.Graph;
using Kiln.Weights;

namespace Kiln.Runtime;

/// <summary>
/// Keeps the data MatMulNBits pre-packs from out of the process's resident memory while ONNX Runtime
/// creates the session. ORT reads each weight once, into a packed copy of its own, and never again, so
/// without this the mapped originals and the copies would all be resident together at the end of session
/// creation (about twice the int4 weights). The originals are mapped from a file (the cache's weights
/// file), so releasing their pages at any moment is safe: a page read again comes back from the page cache
/// unchanged. Released every few milliseconds until disposed, then once more. Weights made in anonymous
/// memory (a run without the cache) are left alone.
/// </summary>
public sealed class PrepackedSources : IDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(20);

    private readonly List<ParameterData> _sources;
    private readonly Timer? _timer;
    private readonly Lock _lock = new();

    private PrepackedSources(List<ParameterData> sources)
    {
        _sources = sources;
        if (sources.Count > 0) _timer = new Timer(_ => Release(), null, Interval, Interval);
    }

    /// <summary>The data inputs of the graph's <c>matmul_nbits</c> nodes that are mapped from a file, released until disposed.</summary>
    public static PrepackedSources ReleasedWhileCreating(ModelGraph graph, WeightSet weights)
    {
        var data = graph.Nodes.Where(n => n.Op == "matmul_nbits").Select(n => n.Inputs[1].Name).ToHashSet(StringComparer.Ordinal);
        return new PrepackedSources([.. weights.Parameters.Where(w => !w.IsCopy && data.Contains(w.Name))]);
    }

    private void Release()
    {
        lock (_lock)
        {
            foreach (var source in _sources) PageAdvice.ReleaseFileBacked(source.Pointer, source.ByteLength);
        }
    }

    public void Dispose()
    {
        if (_timer is null) return;
        // Waits for a release under way, so none runs after this returns.
        using (var done = new ManualResetEvent(false))
        {
            if (_timer.Dispose(done)) done.WaitOne();
        }
        Release();
    }
}
