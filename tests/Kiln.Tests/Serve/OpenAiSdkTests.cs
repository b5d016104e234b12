using System.ClientModel;
using OpenAI;
using OpenAI.Models;

namespace Kiln.Tests.Serve;

/// <summary>
/// The official OpenAI .NET SDK (NuGet OpenAI) against a real `kiln serve`: the model list, and the
/// server's errors as the SDK reads them. (The SDK has no public client for /v1/completions, whose
/// LegacyCompletionClient is internal: <see cref="CompletionsTests"/> sends those requests itself.)
/// </summary>
public sealed class OpenAiSdkTests(SharedServer shared) : IClassFixture<SharedServer>
{
    private OpenAIClientOptions Options => new() { Endpoint = new Uri(shared.Server.Url, "/v1") };

    [Fact]
    public async Task The_model_list_names_the_served_model()
    {
        var client = new OpenAIModelClient(new ApiKeyCredential(ServeProcess.ApiKey), Options);
        var models = (await client.GetModelsAsync()).Value;
        Assert.Equal("stories260K", Assert.Single(models).Id);
        Assert.Equal("stories260K", (await client.GetModelAsync("stories260K")).Value.Id);
    }

    [Fact]
    public async Task The_sdk_reads_the_servers_errors()
    {
        var client = new OpenAIModelClient(new ApiKeyCredential("wrong"), Options);
        var error = await Assert.ThrowsAsync<ClientResultException>(() => client.GetModelsAsync());
        Assert.Equal(401, error.Status);
        Assert.Contains("Incorrect API key provided", error.Message);
    }
}
