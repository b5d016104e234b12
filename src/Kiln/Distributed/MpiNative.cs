using System.Runtime.InteropServices;

namespace Kiln.Distributed;

/// <summary>
/// The few MPI calls Kiln makes, bound at run time to Open MPI's <c>libmpi.so.40</c>, so a machine
/// without MPI runs a world of one. Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are
/// the addresses of globals the library exports.
/// </summary>
internal static unsafe class MpiNative
{
    public const string LibraryName = "libmpi.so.40";

    private const int Success = 0;
    private const int ThreadSerialized = 2;

    /// <summary>Open MPI's MPI_IN_PLACE.</summary>
    public static readonly nint InPlace = 1;

    private static readonly Lazy<Api> Library = new(Bind);

    public static Api Calls => Library.Value;

    /// <summary>True when the MPI library can be loaded.</summary>
    public static bool IsAvailable()
    {
        if (!NativeLibrary.TryLoad(LibraryName, out var handle)) return false;
        NativeLibrary.Free(handle);
        return true;
    }

    public static void Check(int code, string call)
    {
        if (code != Success) throw new KilnException($"MPI: {call} failed with error code {code}");
    }

    public sealed class Api
    {
        public required nint CommWorld, Float, Int, Byte, Sum, LogicalAnd;
        public required delegate* unmanaged<int*, nint*, int, int*, int> InitThread;
        public required delegate* unmanaged<int*, int> Initialized;
        public required delegate* unmanaged<int*, int> Finalized;
        public required delegate* unmanaged<int> Finalize;
        public required delegate* unmanaged<nint, int, int> Abort;
        public required delegate* unmanaged<nint, int*, int> CommRank;
        public required delegate* unmanaged<nint, int*, int> CommSize;
        public required delegate* unmanaged<nint, int> Barrier;
        public required delegate* unmanaged<nint, nint, int, nint, nint, nint, int> Allreduce;
        public required delegate* unmanaged<nint, int, nint, int, nint, int> Bcast;
        public required delegate* unmanaged<nint, int, nint, nint, int, nint, nint, int> Allgather;

        public void InitSerialized()
        {
            int provided;
            Check(InitThread(null, null, ThreadSerialized, &provided), "MPI_Init_thread");
        }
    }

    private static Api Bind()
    {
        if (!NativeLibrary.TryLoad(LibraryName, out var library))
            throw new KilnException($"MPI: {LibraryName} is not installed (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev)");
        nint Export(string name) => NativeLibrary.GetExport(library, name);
        return new Api
        {
            CommWorld = Export("ompi_mpi_comm_world"),
            Float = Export("ompi_mpi_float"),
            Int = Export("ompi_mpi_int"),
            Byte = Export("ompi_mpi_byte"),
            Sum = Export("ompi_mpi_op_sum"),
            LogicalAnd = Export("ompi_mpi_op_land"),
            InitThread = (delegate* unmanaged<int*, nint*, int, int*, int>)Export("MPI_Init_thread"),
            Initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized"),
            Finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized"),
            Finalize = (delegate* unmanaged<int>)Export("MPI_Finalize"),
            Abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort"),
            CommRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank"),
            CommSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size"),
            Barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier"),
            Allreduce = (delegate* unmanaged<nint, nint, int, nint, nint, nint, int>)Export("MPI_Allreduce"),
            Bcast = (delegate* unmanaged<nint, int, nint, int, nint, int>)Export("MPI_Bcast"),
            Allgather = (delegate* unmanaged<nint, int, nint, nint, int, nint, nint, int>)Export("MPI_Allgather"),
        };
    }
}
