using Kiln;
using Kiln.Cli;

var parseResult = KilnCommand.Create().Parse(args);
if (parseResult.Errors.Count > 0)
{
    // Usage errors are user errors: one line, exit code 2. System.CommandLine may report several
    // errors, and some span lines (the allowed values of an option, one per line): all go on one line.
    var messages = parseResult.Errors.Select(e => string.Join(" ", e.Message.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries)));
    Console.Error.WriteLine($"kiln: error: {string.Join("; ", messages)}");
    return CommandRunner.UserError;
}
try
{
    if (TensorParallel.Prepare(parseResult, args) is { } launched) return launched;
}
catch (KilnException e)
{
    TensorParallel.ReportError($"kiln: error: {TensorParallel.RankPrefix}{e.Message}");
    TensorParallel.AbortOthers(CommandRunner.UserError);
    return CommandRunner.UserError;
}
var exitCode = parseResult.Invoke();
if (exitCode != 0) TensorParallel.AbortOthers(exitCode);
TensorParallel.Finish();
return exitCode;
