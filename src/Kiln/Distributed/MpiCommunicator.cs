using System.Text;

namespace Kiln.Distributed;

/// <summary>
/// The world of an MPI job (every process <c>mpirun</c> started), through Open MPI's C library.
/// Created once per process; <see cref="Dispose"/> finalizes MPI. A rank that fails calls
/// <see cref="Abort"/>, so the others end with mpirun's report naming it instead of waiting forever.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator, IDisposable
{
    private readonly MpiNative.Api _mpi;
    private bool _finalized;

    private MpiCommunicator(MpiNative.Api mpi, int rank, int size)
    {
        _mpi = mpi;
        Rank = rank;
        Size = size;
    }

    /// <summary>Environment variables Open MPI's mpirun sets in every process it starts.</summary>
    public static bool IsRunningUnderMpirun =>
        Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null;

    /// <summary>True when Open MPI's library is installed.</summary>
    public static bool IsAvailable => MpiNative.IsAvailable();

    /// <summary>Initializes MPI and joins the world.</summary>
    public static MpiCommunicator Initialize()
    {
        var mpi = MpiNative.Calls;
        int initialized, rank, size;
        MpiNative.Check(mpi.Initialized(&initialized), "MPI_Initialized");
        if (initialized != 0) throw new KilnException("MPI: already initialized in this process");
        mpi.InitSerialized();
        MpiNative.Check(mpi.CommRank(mpi.CommWorld, &rank), "MPI_Comm_rank");
        MpiNative.Check(mpi.CommSize(mpi.CommWorld, &size), "MPI_Comm_size");
        return new MpiCommunicator(mpi, rank, size);
    }

    public int Size { get; }

    public int Rank { get; }

    public void Barrier() => MpiNative.Check(_mpi.Barrier(_mpi.CommWorld), "MPI_Barrier");

    public bool AllAgree(bool value)
    {
        var vote = value ? 1 : 0;
        MpiNative.Check(_mpi.Allreduce(MpiNative.InPlace, (nint)(&vote), 1, _mpi.Int, _mpi.LogicalAnd, _mpi.CommWorld), "MPI_Allreduce");
        return vote != 0;
    }

    public string Broadcast(string value)
    {
        var bytes = Rank == 0 ? Encoding.UTF8.GetBytes(value) : [];
        var length = Broadcast(bytes.Length);
        if (Rank != 0) bytes = new byte[length];
        fixed (byte* data = bytes)
        {
            MpiNative.Check(_mpi.Bcast((nint)data, length, _mpi.Byte, 0, _mpi.CommWorld), "MPI_Bcast");
        }
        return Rank == 0 ? value : Encoding.UTF8.GetString(bytes);
    }

    public int Broadcast(int value)
    {
        MpiNative.Check(_mpi.Bcast((nint)(&value), 1, _mpi.Int, 0, _mpi.CommWorld), "MPI_Bcast");
        return value;
    }

    public void AllReduceSum(Span<float> values)
    {
        fixed (float* data = values)
        {
            MpiNative.Check(_mpi.Allreduce(MpiNative.InPlace, (nint)data, values.Length, _mpi.Float, _mpi.Sum, _mpi.CommWorld), "MPI_Allreduce");
        }
    }

    public void AllGather(ReadOnlySpan<float> mine, Span<float> all)
    {
        if (all.Length != mine.Length * Size) throw new ArgumentException($"all-gather of {mine.Length} values from {Size} ranks into {all.Length}");
        fixed (float* send = mine)
        fixed (float* receive = all)
        {
            MpiNative.Check(_mpi.Allgather((nint)send, mine.Length, _mpi.Float, (nint)receive, mine.Length, _mpi.Float, _mpi.CommWorld), "MPI_Allgather");
        }
    }

    /// <summary>Ends every rank of the job with <paramref name="exitCode"/> (mpirun reports which rank called it).</summary>
    public void Abort(int exitCode) => _mpi.Abort(_mpi.CommWorld, exitCode);

    public void Dispose()
    {
        if (_finalized) return;
        _finalized = true;
        _mpi.Finalize();
    }
}
