using System.Diagnostics;

namespace Alignment.Build.Tests;

/// <summary>
/// An app outside this repository that references src/Alignment as a project (so no package target runs in its build)
/// still loads TorchSharp on a system whose libstdc++ lacks GLIBCXX_3.4.32: TorchRuntime patches the app's own copy.
/// </summary>
public sealed class ProjectReferenceConsumerTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-consumer-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    static (int Code, string Output) Run(string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args)
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output + error.Result);
    }

    [Fact]
    public void An_app_with_a_project_reference_loads_torchsharp_on_this_system()
    {
        string library = Path.Combine(Fixture.RepositoryRoot, "src", "Alignment", "Alignment.csproj");
        File.WriteAllText(Path.Combine(_folder, "app.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
                <ProjectReference Include="{library}" />
                <PackageReference Include="TorchSharp-cpu" Version="0.107.0" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(_folder, "Program.cs"), """
            Alignment.Native.TorchRuntime.EnsureLoaded();
            using var t = TorchSharp.torch.ones(2, 3);
            Console.WriteLine($"sum {t.sum().item<float>()}");
            """);
        string artifacts = Path.Combine(_folder, "artifacts"); // the repository's own bin/obj folders are left alone

        var (built, buildLog) = Run(_folder, "build", "--artifacts-path", artifacts);
        Assert.True(built == 0, buildLog);
        string bridge = Directory.GetFiles(Path.Combine(artifacts, "bin", "app"), "libLibTorchSharp.so", SearchOption.AllDirectories).Single();
        Assert.False(ElfVersionNeeds.ReadNeeds(bridge).Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak); // no build-time patch ran

        var (ran, output) = Run(_folder, Path.Combine(artifacts, "bin", "app", "debug", "app.dll"));

        Assert.True(ran == 0, output);
        Assert.Contains("sum 6", output);
        Assert.True(ElfVersionNeeds.ReadNeeds(bridge).Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak); // patched at run time
    }
}
