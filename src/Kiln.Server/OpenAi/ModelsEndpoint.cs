namespace Kiln.Server.OpenAi;

/// <summary>GET /v1/models: the one model this server runs.</summary>
public static class ModelsEndpoint
{
    public static Task HandleAsync(HttpContext context, ServerState state, long started)
    {
        var list = new ModelList([new ModelCard(state.Model.Id, started, state.Engine.Context)]);
        return context.Response.WriteAsJsonAsync(list, OpenAiJsonContext.Default.ModelList, cancellationToken: context.RequestAborted);
    }
}
