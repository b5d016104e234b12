namespace Kiln.Tests;

/// <summary>Locates files of this repository from the test binary's folder.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>tests/data/...</summary>
    public static string Data(params string[] parts) => Path.Combine([RepoRoot, "tests", "data", .. parts]);

    /// <summary>One of the Hugging Face oracle cases, e.g. "llama_gqa".</summary>
    public static string Oracle(string name) => Data("hf-oracle", name);

    /// <summary>The embedded default model's folder in the repository.</summary>
    public static string DefaultModel => Path.Combine(RepoRoot, "models", "stories260K");

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Kiln.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException("Kiln.slnx not found above " + AppContext.BaseDirectory);
    }
}
