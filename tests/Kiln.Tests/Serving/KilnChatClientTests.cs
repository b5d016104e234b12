using System.Text;
using Kiln.Runtime;
using Kiln.Serving;
using Microsoft.Extensions.AI;

namespace Kiln.Tests.Serving;

/// <summary>
/// KilnChatClient, Kiln's in-process IChatClient, on the default model: answers and streams equal to a
/// <see cref="Generator"/> run on the prompt the chat template makes; calls from several tasks at once
/// (batched by one engine) each get their own answer; options it cannot honor are refused.
/// </summary>
public sealed class KilnChatClientTests : IDisposable
{
    private readonly KilnChatClient client = KilnChatClient.Load(TestPaths.DefaultModel, new EngineOptions(Slots: 3));

    public void Dispose() => client.Dispose();

    [Fact]
    public async Task A_greedy_answer_and_its_stream_equal_the_generator_on_the_templates_prompt()
    {
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 30 };
        var expected = Expected("Once upon a time", 30);
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Once upon a time")], options);
        Assert.Equal(expected, response.Text);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(30, response.Usage?.OutputTokenCount);
        Assert.Equal(5, response.Usage?.InputTokenCount);
        Assert.Equal("stories260K", response.ModelId);

        var streamed = new StringBuilder();
        var updates = 0;
        await foreach (var update in client.GetStreamingResponseAsync("Once upon a time", options))
        {
            streamed.Append(update.Text);
            updates++;
        }
        Assert.Equal(expected, streamed.ToString());
        Assert.True(updates > 10);
    }

    [Fact]
    public async Task Calls_from_several_tasks_at_once_each_get_their_own_answer()
    {
        string[] prompts = ["Once upon a time", "Lily and Ben", "The dog ran", "One day, a bird", "Tom had a red ball"];
        var answers = await Task.WhenAll(prompts.Select(p => client.GetResponseAsync(p, new ChatOptions { Temperature = 0, MaxOutputTokens = 40 })));
        for (var i = 0; i < prompts.Length; i++) Assert.Equal(Expected(prompts[i], 40), answers[i].Text);
    }

    [Fact]
    public async Task Stop_sequences_end_the_text_and_unsupported_options_are_refused()
    {
        var full = Expected("Once upon a time", 30);
        var cut = await client.GetResponseAsync("Once upon a time", new ChatOptions { Temperature = 0, MaxOutputTokens = 30, StopSequences = [" named"] });
        Assert.Equal(full[..full.IndexOf(" named", StringComparison.Ordinal)], cut.Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);

        var tool = AIFunctionFactory.Create(() => 1, "one");
        await Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync("Hi", new ChatOptions { Tools = [tool] }));
        await Assert.ThrowsAsync<KilnException>(() => client.GetResponseAsync("Hi", new ChatOptions { MaxOutputTokens = 100_000 }));
        Assert.NotNull(client.GetService<ChatClientMetadata>());
    }

    // The default model's template makes "<s>" + the message: the prompt kiln generate --prompt encodes.
    private static string Expected(string prompt, int tokens)
    {
        using var tokenizer = Tokenizer.Load(TestPaths.DefaultModel);
        using var model = LoadedModel.Load(TestPaths.DefaultModel);
        var ids = tokenizer.Encode(prompt);
        var result = new Generator(model).Generate(ids, new GenerationOptions(tokens, new SamplingOptions(), StopTokens.Of(model.Checkpoint)));
        var decoder = new StreamingDecoder(tokenizer, ids);
        return string.Concat(result.NewIds.Select(decoder.Push)) + decoder.Flush();
    }
}
