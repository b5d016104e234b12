using Kiln.Chat;

namespace Kiln.Tests.Chat;

/// <summary>The conversation files of `kiln chat-template --messages`: what is read and what is refused.</summary>
public sealed class ChatMessagesFileTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void Messages_keep_their_fields()
    {
        var path = Write("""
            [{"role": "system", "content": "Be brief."},
             {"role": "assistant", "content": null, "tool_calls": [{"id": "1"}]},
             {"role": "user", "content": [{"type": "text", "text": "Hi"}], "name": "Ann"}]
            """);
        var messages = ChatMessagesFile.Read(path);
        Assert.Equal(3, messages.Count);
        Assert.Equal("Ann", messages[2]!["name"]!.GetValue<string>());
        Assert.Empty(ChatMessagesFile.Read(Write("[]")));
    }

    [Theory]
    [InlineData("""{"role": "user", "content": "hi"}""", "top level: expected a JSON array of messages, found Object")]
    [InlineData("""["hi"]""", "[0]: expected an object with role and content, found String")]
    [InlineData("""[{"role": "user", "content": "a"}, {"content": "b"}]""", "[1].role: missing")]
    [InlineData("""[{"role": 1, "content": "a"}]""", "[0].role: expected a string, found Number")]
    [InlineData("""[{"role": "user"}]""", "[0].content: missing")]
    [InlineData("""[{"role": "user", "content": 5}]""", "[0].content: expected a string, an array of content parts or null, found Number")]
    [InlineData("""[{"role": "user", "content": "a", "role": "system"}]""", "[0].role: duplicate key")]
    [InlineData("[{\"role\": \"user\",\n \"content\": }]", "line 2: malformed JSON: ")]
    public void A_bad_file_is_one_line_naming_the_file_and_field(string json, string message)
    {
        var path = Write(json);
        var error = Assert.Throws<KilnException>(() => ChatMessagesFile.Read(path)).Message;
        Assert.StartsWith($"{path}: {message}", error);
        Assert.DoesNotContain('\n', error);
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        var missing = dir.File("missing.json");
        Assert.Equal($"{missing}: file not found", Assert.Throws<KilnException>(() => ChatMessagesFile.Read(missing)).Message);
    }

    private string Write(string json)
    {
        var path = dir.File($"messages-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }
}
