using System.Text.Json.Nodes;
using Alignment.Evaluation;

namespace Alignment.Tests.Evaluation;

public sealed class InstructionChecksTests
{
    public static TheoryData<string, string, string, bool> Cases => new()
    {
        { "change_case:english_lowercase", "{}", "all small here.", true },
        { "change_case:english_lowercase", "{}", "Not all small.", false },
        { "change_case:english_capital", "{}", "SHOUT IT!", true },
        { "change_case:english_capital", "{}", "SHOUT it", false },
        { "length_constraints:number_words", """{"relation": "at least", "num_words": 4}""", "one two three four", true },
        { "length_constraints:number_words", """{"relation": "at least", "num_words": 4}""", "one two, three!", false },
        { "length_constraints:number_words", """{"relation": "less than", "num_words": 3}""", "don't stop", true },   // "don't" is one word
        { "length_constraints:number_sentences", """{"relation": "at least", "num_sentences": 3}""", "One. Two! Three?", true },
        { "length_constraints:number_sentences", """{"relation": "at least", "num_sentences": 3}""", "One. Two and 3.5 more", false },
        { "length_constraints:number_paragraphs", """{"num_paragraphs": 2}""", "first\n***\nsecond", true },
        { "length_constraints:number_paragraphs", """{"num_paragraphs": 2}""", "first\n***\n\n***\nsecond", false },     // an empty one inside
        { "length_constraints:number_paragraphs", """{"num_paragraphs": 2}""", "one paragraph only", false },
        { "keywords:existence", """{"keywords": ["Quiet", "steel"]}""", "A quiet kettle of steel.", true },
        { "keywords:existence", """{"keywords": ["quiet", "steel"]}""", "A quiet kettle.", false },
        { "keywords:forbidden_words", """{"forbidden_words": ["dark"]}""", "The darkest hour", true },   // a word, not a substring
        { "keywords:forbidden_words", """{"forbidden_words": ["dark"]}""", "It was Dark.", false },
        { "keywords:frequency", """{"keyword": "light", "relation": "at least", "frequency": 2}""", "Light, light and lights", true },
        { "keywords:frequency", """{"keyword": "light", "relation": "at least", "frequency": 2}""", "one light", false },
        { "punctuation:no_comma", "{}", "no commas here", true },
        { "punctuation:no_comma", "{}", "one, two", false },
        { "detectable_format:json_format", "{}", "```json\n{\"a\": 1}\n```", true },
        { "detectable_format:json_format", "{}", "{\"a\": 1", false },
        { "detectable_format:number_bullet_lists", """{"num_bullets": 2}""", "Tips:\n* one\n- two", true },
        { "detectable_format:number_bullet_lists", """{"num_bullets": 2}""", "* one\n* two\n* three", false },
        { "detectable_format:title", "{}", "<<Sea Song>>\nwaves", true },
        { "detectable_format:title", "{}", "<< >> no title", false },
        { "detectable_content:number_placeholders", """{"num_placeholders": 2}""", "Dear [name], at [address]", true },
        { "detectable_content:number_placeholders", """{"num_placeholders": 2}""", "Dear [name]", false },
        { "startend:end_checker", """{"end_phrase": "Any other questions?"}""", "Done. any other questions?  ", true },
        { "startend:end_checker", """{"end_phrase": "Any other questions?"}""", "Any other questions? Bye", false },
        { "startend:start_checker", """{"start_phrase": "My answer is"}""", "  My answer is yes", true },
        { "startend:start_checker", """{"start_phrase": "My answer is"}""", "Yes, my answer is", false },
        { "startend:quotation", "{}", "\"a motto\"", true },
        { "startend:quotation", "{}", "\"a motto", false },
        { "language:response_language", """{"language": "ru"}""", "Сегодня солнечно (sunny).", true },
        { "language:response_language", """{"language": "ru"}""", "It is sunny today.", false },
        { "language:response_language", """{"language": "ja"}""", "りんご、バナナ、みかん", true },
        { "language:response_language", """{"language": "en"}""", "Apples and pears.", true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Each_instruction_passes_and_fails_as_written(string id, string arguments, string response, bool expected) =>
        Assert.Equal(expected, InstructionChecks.Check(id, response, JsonNode.Parse(arguments)!.AsObject()));

    [Fact]
    public void Every_instruction_has_a_case_and_the_loose_check_forgives_a_preamble_and_markdown()
    {
        Assert.Equal(InstructionChecks.Ids.Order(), Cases.Select(c => (string)c[0]).Distinct().Order());
        const string response = "Sure! Here it is:\n**all small here.**";
        Assert.False(InstructionChecks.Check("change_case:english_lowercase", response));
        Assert.True(InstructionChecks.CheckLoose("change_case:english_lowercase", response)); // without the first line and the asterisks
        Assert.Throws<ArgumentException>(() => InstructionChecks.Check("made:up", "x"));
    }

    [Fact]
    public void Accuracies_are_ifevals_four_figures()
    {
        var prompts = InstructionFollowing.BuiltInPrompts;
        Assert.Equal(24, prompts.Count);
        Assert.Equal(InstructionChecks.Ids.Order(), prompts.SelectMany(p => p.Instructions.Select(i => i.Id)).Distinct().Order());
        // Prompt 21 (lowercase, no comma) answered three ways; prompt 11 (no comma) once.
        InstructionPrompt haiku = prompts.Single(p => p.Key == "21"), walking = prompts.Single(p => p.Key == "11");
        var report = InstructionFollowing.Evaluate([haiku, haiku, haiku, walking],
            ["snow falls soft and white", "Snow falls, soft", "Here:\nsnow falls soft", "walking helps, a lot"]);
        // Strict: prompt 1 passes both; 2 fails both; 3 fails lowercase ("Here:"), passes no-comma; 4 fails. Loose: 3 passes both.
        Assert.Equal(1 / 4.0, report.PromptStrict, 12);
        Assert.Equal(2 / 4.0, report.PromptLoose, 12);
        Assert.Equal(3 / 7.0, report.InstructionStrict, 12);
        Assert.Equal(4 / 7.0, report.InstructionLoose, 12);
        Assert.Equal(1 / 3.0, report.ByInstruction["change_case:english_lowercase"], 12);
        Assert.Equal(2 / 4.0, report.ByInstruction["punctuation:no_comma"], 12);
    }
}
