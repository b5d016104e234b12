using System.Text;

namespace Kiln.Graph;

/// <summary>The readable text form of a graph, one line per input, parameter, buffer and node.</summary>
public static class GraphPrinter
{
    public static string Print(ModelGraph graph)
    {
        var text = new StringBuilder();
        foreach (var (name, value) in graph.Model?.Fields() ?? []) text.AppendLine($"# {name} = {value}");
        foreach (var (key, value) in graph.Metadata) text.AppendLine($"# {key} = {value}");
        text.AppendLine($"graph({string.Join(", ", graph.Inputs.Select(i => $"{i.Name}: {i.Type}"))}) {{");
        foreach (var p in graph.Parameters) text.AppendLine($"  param {p.Name}: {p.Value.Type} = {p.Recipe}");
        foreach (var b in graph.Buffers) text.AppendLine($"  buffer {b.Name}: {b.Value.Type}");
        foreach (var node in graph.Nodes)
        {
            var outputs = string.Join(", ", node.Outputs.Select(o => $"{o.Name}: {o.Type}"));
            var attributes = node.Attributes.Count == 0 ? "" : " {" + string.Join(", ", node.Attributes.Select(a => $"{a.Key}={a.Value}")) + "}";
            text.AppendLine($"  {outputs} = {node.Op}({string.Join(", ", node.Inputs.Select(i => i.Name))}){attributes}");
        }
        text.AppendLine($"  return {string.Join(", ", graph.Outputs.Select(o => o.Name))}");
        text.AppendLine("}");
        return text.ToString();
    }
}
