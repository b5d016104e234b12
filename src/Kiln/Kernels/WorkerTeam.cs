namespace Kiln.Kernels;

/// <summary>
/// A fixed set of threads that run one job at a time split into contiguous parts: the caller runs
/// part 0 and each worker one other part, and <see cref="Run"/> returns when all are done. Workers
/// are kept between jobs (a decode step runs a few dozen of them, each a millisecond or two) and
/// sleep on an event between them; ONNX Runtime calls a kernel from one thread at a time per session.
/// </summary>
public sealed class WorkerTeam : IDisposable
{
    private readonly Thread[] _workers;
    private readonly ManualResetEventSlim[] _start;
    private readonly CountdownEvent _done;
    private Action<int>? _job;
    private Exception? _failure;
    private volatile bool _stopping;

    /// <param name="size">Threads taking part in each job, the caller included.</param>
    public WorkerTeam(int size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        Size = size;
        _workers = new Thread[size - 1];
        _start = new ManualResetEventSlim[size - 1];
        _done = new CountdownEvent(1);
        for (var i = 0; i < _workers.Length; i++)
        {
            _start[i] = new ManualResetEventSlim(false, spinCount: 100);
            var part = i + 1;
            _workers[i] = new Thread(() => Work(part)) { IsBackground = true, Name = $"kiln-kernel-{part}" };
            _workers[i].Start();
        }
    }

    public int Size { get; }

    /// <summary>Runs <paramref name="part"/>(0..Size-1) once each, in parallel; rethrows the first failure.</summary>
    public void Run(Action<int> part)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        if (Size == 1)
        {
            part(0);
            return;
        }
        _job = part;
        _failure = null;
        _done.Reset(_workers.Length);
        foreach (var start in _start) start.Set();
        try
        {
            part(0);
        }
        finally
        {
            _done.Wait();
            _job = null;
        }
        if (_failure is { } failure) throw new AggregateException(failure);
    }

    private void Work(int part)
    {
        var start = _start[part - 1];
        while (true)
        {
            start.Wait();
            start.Reset();
            if (_stopping) return;
            try
            {
                _job!(part);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _failure, e, null);
            }
            _done.Signal();
        }
    }

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        foreach (var start in _start) start.Set();
        foreach (var worker in _workers) worker.Join();
        foreach (var start in _start) start.Dispose();
        _done.Dispose();
    }
}
