using System.ClientModel;
using System.Text;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using ChatFinishReason = OpenAI.Chat.ChatFinishReason;

namespace Kiln.Tests.Serve;

/// <summary>
/// /v1/chat/completions of a real `kiln serve` through the official OpenAI .NET SDK's ChatClient and through
/// Microsoft.Extensions.AI's OpenAI adapter (an IChatClient), streamed and not. The default model's chat
/// template makes "&lt;s&gt;" + the message of a one-message conversation, so the answer is `kiln generate`'s
/// greedy continuation of the same text.
/// </summary>
public sealed class ChatClientsTests(SharedServer shared) : IClassFixture<SharedServer>
{
    private const string Prompt = "Once upon a time";
    private const int Tokens = 24;

    private ChatClient Sdk => new("stories260K", new ApiKeyCredential(ServeProcess.ApiKey), new OpenAIClientOptions { Endpoint = new Uri(shared.Server.Url, "/v1") });

    private static ChatCompletionOptions Greedy => new() { Temperature = 0, MaxOutputTokenCount = Tokens };

    [Fact]
    public async Task The_sdk_chat_answer_equals_kiln_generate_greedy()
    {
        var completion = (await Sdk.CompleteChatAsync([new UserChatMessage(Prompt)], Greedy)).Value;
        Assert.Equal(CompletionsTests.GenerateGreedy(Prompt, Tokens), completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal(Tokens, completion.Usage.OutputTokenCount);
        Assert.Equal(5, completion.Usage.InputTokenCount);
    }

    [Fact]
    public async Task The_sdk_chat_stream_adds_up_to_kiln_generate_greedy()
    {
        var text = new StringBuilder();
        var (updates, finish) = (0, (ChatFinishReason?)null);
        ChatTokenUsage? usage = null;
        await foreach (var update in Sdk.CompleteChatStreamingAsync([new UserChatMessage(Prompt)], Greedy))
        {
            updates++;
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }
        Assert.Equal(CompletionsTests.GenerateGreedy(Prompt, Tokens), text.ToString());
        Assert.True(updates >= 10, "one update per piece of text");
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.Equal(Tokens, usage?.OutputTokenCount);
    }

    [Fact]
    public async Task The_microsoft_extensions_ai_adapter_answers_and_streams_the_same()
    {
        using IChatClient client = Sdk.AsIChatClient();
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = Tokens };
        var expected = CompletionsTests.GenerateGreedy(Prompt, Tokens);
        var response = await client.GetResponseAsync(Prompt, options);
        Assert.Equal(expected, response.Text);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(Tokens, response.Usage?.OutputTokenCount);

        var streamed = new StringBuilder();
        await foreach (var update in client.GetStreamingResponseAsync(Prompt, options)) streamed.Append(update.Text);
        Assert.Equal(expected, streamed.ToString());
    }

    [Fact]
    public async Task Stop_sequences_and_a_seed_through_the_adapter()
    {
        using IChatClient client = Sdk.AsIChatClient();
        var full = CompletionsTests.GenerateGreedy(Prompt, Tokens);
        var cut = await client.GetResponseAsync(Prompt, new ChatOptions { Temperature = 0, MaxOutputTokens = Tokens, StopSequences = [" little"] });
        Assert.Equal(full[..full.IndexOf(" little", StringComparison.Ordinal)], cut.Text);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.Stop, cut.FinishReason);

        var seeded = new ChatOptions { Temperature = 0.9f, TopP = 0.95f, Seed = 11, MaxOutputTokens = 16 };
        Assert.Equal((await client.GetResponseAsync(Prompt, seeded)).Text, (await client.GetResponseAsync(Prompt, seeded)).Text);
    }
}
