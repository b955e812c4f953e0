using System.CommandLine;
using Alignment.Cli.Arguments;
using Alignment.Models;
using Alignment.Tokenization;

namespace Alignment.Cli.Commands;

/// <summary><c>align generate</c>: one reply to a prompt.</summary>
internal static class GenerateCommand
{
    public static Command Create(CliContext context)
    {
        var model = new ModelArguments(lora: false);
        var sampling = new SamplingArguments();
        var prompt = CliOption.Text("prompt", "The prompt (a user turn through the chat template when the model has one).");
        prompt.Required = true;
        var command = new Command("generate", "Sample a reply to a prompt.");
        model.AddTo(command);
        sampling.AddTo(command);
        command.Options.Add(prompt);
        command.SetAction(parse =>
        {
            var (tokenizer, template) = ModelArguments.TokenizerOf(model.Folder(parse));
            GenerationOptions options = sampling.Read(parse, tokenizer);
            using var llm = LlamaForCausalLM.FromPretrained(model.Folder(parse), model.LoadOptions(parse));
            context.Output.WriteLine(SamplingArguments.Reply(llm, tokenizer, template, [new ChatMessage("user", parse.GetValue(prompt)!)], options));
            return 0;
        });
        return command;
    }
}
