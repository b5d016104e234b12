using System.CommandLine;

namespace Kiln.Cli;

/// <summary>
/// Runs a command's body with Kiln's error conventions: a user error (bad path, malformed file,
/// unsupported model) prints one line and exits 2; an internal error prints one line and exits 1;
/// --verbose adds the stack trace.
/// </summary>
public static class CommandRunner
{
    public const int UserError = 2;
    public const int InternalError = 1;

    public static void SetKilnAction(this Command command, Func<ParseResult, int> body) =>
        command.SetAction(parseResult => Run(parseResult, body));

    private static int Run(ParseResult parseResult, Func<ParseResult, int> body)
    {
        var verbose = parseResult.GetValue(CommonOptions.Verbose);
        try
        {
            return body(parseResult);
        }
        catch (KilnException e)
        {
            Fail(e, verbose);
            return UserError;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Fail(e, verbose);
            return UserError;
        }
        catch (Exception e)
        {
            Fail(new InvalidOperationException($"internal error ({e.GetType().Name}): {e.Message}", e), verbose);
            return InternalError;
        }
    }

    private static void Fail(Exception e, bool verbose)
    {
        Console.Out.Flush();
        TensorParallel.ReportError($"kiln: error: {TensorParallel.RankPrefix}{KilnException.OneLine(e.Message)}");
        if (verbose) TensorParallel.Errors.WriteLine(e);
    }
}
