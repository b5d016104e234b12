using Kiln.Cli;

return KilnCommand.Create().Parse(args).Invoke();
