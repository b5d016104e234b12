using System.CommandLine;
using Kiln.Cli.Commands;

namespace Kiln.Cli;

/// <summary>The `kiln` root command and its subcommands.</summary>
public static class KilnCommand
{
    public static RootCommand Create()
    {
        var root = new RootCommand("Kiln: a deployment compiler for large language models on ONNX Runtime.");
        root.Options.Add(CommonOptions.Verbose);
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(LogitsCommand.Create());
        root.Subcommands.Add(ChatTemplateCommand.Create());
        root.Subcommands.Add(InspectCommand.Create());
        root.Subcommands.Add(GraphCommand.Create());
        root.Subcommands.Add(CompileCommand.Create());
        root.Subcommands.Add(TestModelCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(CacheCommand.Create());
        return root;
    }
}
