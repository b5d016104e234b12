namespace Kiln.Server.OpenAi;

/// <summary>GET /v1/models and /v1/models/{id}: the one model this server runs.</summary>
public static class ModelsEndpoint
{
    public static Task ListAsync(HttpContext context, ServerState state, long started) =>
        context.Response.WriteAsJsonAsync(new ModelList([Card(state, started)]), OpenAiJsonContext.Default.ModelList, cancellationToken: context.RequestAborted);

    public static Task GetAsync(HttpContext context, ServerState state, long started)
    {
        var id = context.Request.RouteValues["id"] as string;
        if (id != state.Model.Id)
            throw new ApiException(404, $"The model `{id}` does not exist. This server serves `{state.Model.Id}`.", param: "model", code: "model_not_found");
        return context.Response.WriteAsJsonAsync(Card(state, started), OpenAiJsonContext.Default.ModelCard, cancellationToken: context.RequestAborted);
    }

    private static ModelCard Card(ServerState state, long started) => new(state.Model.Id, started, state.Engine.Context);
}
