using System.CommandLine;
using System.Diagnostics;
using Kiln.Distributed;

namespace Kiln.Cli;

/// <summary>
/// <c>--tp N</c>: run the model split over N ranks, one process each, connected by MPI. Under
/// <c>mpirun</c> this process joins the job's world; otherwise a command with N > 1 starts mpirun on
/// itself (as vLLM's --tensor-parallel-size starts its workers) and returns its exit code. Only rank 0
/// writes to standard output.
/// </summary>
public static class TensorParallel
{
    public const int MaxDegree = 64;

    public static Option<int?> Degree { get; } = CreateDegree();

    /// <summary>This process's world: one process, or the MPI job it belongs to.</summary>
    public static ICommunicator World { get; private set; } = SingleProcess.Instance;

    /// <summary>
    /// Before the command runs: joins the MPI job when started by mpirun, or starts mpirun when the command
    /// asks for more than one rank. Returns the exit code when this process only launched the job.
    /// </summary>
    public static int? Prepare(ParseResult parse, string[] args)
    {
        var asked = parse.GetResult(Degree) is { } result ? result.GetValueOrDefault<int?>() : null;
        if (!MpiCommunicator.IsRunningUnderMpirun) return asked is > 1 ? Launch(asked.Value, args) : null;

        // mpirun gives rank 0 a terminal, where .NET's console would write terminal set-up codes into the output.
        Environment.SetEnvironmentVariable("TERM", "dumb");
        var mpi = MpiCommunicator.Initialize();
        World = mpi;
        if (mpi.Rank != 0)
        {
            // Every rank computes the same result: rank 0 reports it; the others report only their errors.
            Console.SetOut(TextWriter.Null);
            Console.SetError(TextWriter.Null);
        }
        if (asked is { } degree && degree != mpi.Size)
            throw new KilnException($"--tp {degree}: mpirun started {mpi.Size} processes; give mpirun -np {degree} or leave --tp out");
        return null;
    }

    /// <summary>Where errors go: standard error, on every rank (naming the rank when there are several).</summary>
    public static TextWriter Errors { get; } = Console.Error;

    /// <summary>
    /// Prints a rank's error. Most errors (a bad path, a model the layout cannot split) meet every rank:
    /// rank 0 prints its error and ends the job (<see cref="AbortOthers"/>) at once, so one line is printed;
    /// the other ranks wait five seconds first (generous on a loaded machine), and print theirs only if rank 0
    /// did not end the job.
    /// </summary>
    public static void ReportError(string message)
    {
        if (World is MpiCommunicator { Size: > 1, Rank: > 0 }) Thread.Sleep(TimeSpan.FromSeconds(5));
        Errors.WriteLine(message);
    }

    /// <summary>"rank 1: " on a rank other than 0, so an error says which process met it.</summary>
    public static string RankPrefix => World.Rank == 0 ? "" : $"rank {World.Rank}: ";

    /// <summary>Intra-op threads per rank: as asked, else the machine's cores shared among the ranks.</summary>
    public static int? Threads(int? asked) => asked ?? (World.Size > 1 ? Math.Max(1, Environment.ProcessorCount / World.Size) : null);

    /// <summary>After a rank failed: ends the whole job, so no other rank waits for it at a collective.</summary>
    public static void AbortOthers(int exitCode)
    {
        if (World is MpiCommunicator { Size: > 1 } mpi) mpi.Abort(exitCode);
    }

    /// <summary>After the command: leaves the MPI job.</summary>
    public static void Finish() => (World as MpiCommunicator)?.Dispose();

    private static Option<int?> CreateDegree()
    {
        var degree = new Option<int?>("--tp")
        {
            Description = "Tensor-parallel ranks: the model's attention heads and MLP split over N processes connected by MPI " +
                "(started with mpirun when not already under it; default 1).",
        };
        degree.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && int.TryParse(result.Tokens[^1].Value, out var n) && n is < 1 or > MaxDegree)
                result.AddError($"--tp: must be between 1 and {MaxDegree}, got {n}");
        });
        return degree;
    }

    // mpirun -np N <this kiln> <the same arguments>: every rank runs the command; their output is this process's.
    private static int Launch(int ranks, string[] args)
    {
        var start = new ProcessStartInfo("mpirun") { UseShellExecute = false };
        foreach (var arg in new[] { "-np", $"{ranks}", "--bind-to", "none", "--quiet" }) start.ArgumentList.Add(arg);
        // Only when there are more ranks than cores: oversubscribed, Open MPI yields the core while it waits, which is 5x slower.
        if (ranks > Environment.ProcessorCount) start.ArgumentList.Add("--oversubscribe");
        foreach (var part in SelfCommand()) start.ArgumentList.Add(part);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        // Open MPI refuses to start as root unless told twice; containers often run as root.
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new KilnException($"--tp {ranks}: mpirun was not found (install Open MPI: apt-get install openmpi-bin libopenmpi-dev)");
        }
        using (process)
        {
            process.WaitForExit();
            // A user error was printed by the rank that met it; anything else (a rank killed, a crash) is said here.
            if (process.ExitCode is 0 or CommandRunner.UserError) return process.ExitCode;
            Console.Error.WriteLine($"kiln: error: --tp {ranks}: a rank ended abnormally (mpirun exit code {process.ExitCode}); every rank was stopped");
            return CommandRunner.InternalError;
        }
    }

    // The command that started this process: the native kiln, or `dotnet kiln.dll` for a framework-dependent build.
    private static string[] SelfCommand()
    {
        var path = Environment.ProcessPath ?? throw new KilnException("--tp: cannot tell which program this is, to start its ranks");
        return Path.GetFileNameWithoutExtension(path) == "dotnet" ? [path, Environment.GetCommandLineArgs()[0]] : [path];
    }
}
