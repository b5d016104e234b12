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
return parseResult.Invoke();
