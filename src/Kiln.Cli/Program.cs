using Kiln.Cli;

var parseResult = KilnCommand.Create().Parse(args);
if (parseResult.Errors.Count > 0)
{
    // Usage errors are user errors: one line each, exit code 2.
    foreach (var error in parseResult.Errors) Console.Error.WriteLine($"kiln: error: {error.Message}");
    return CommandRunner.UserError;
}
return parseResult.Invoke();
