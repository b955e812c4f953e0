using System.Collections;
using Microsoft.Build.Framework;

namespace Alignment.Build.Tests;

public sealed class WeakenUnneededGlibcxxTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-task-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>Records what the task logs, as MSBuild would show it.</summary>
    sealed class RecordingEngine : IBuildEngine
    {
        public List<string> Messages { get; } = [];
        public List<string> Warnings { get; } = [];
        public bool ContinueOnError => false;
        public int LineNumberOfTaskNode => 0;
        public int ColumnNumberOfTaskNode => 0;
        public string ProjectFileOfTaskNode => "test.csproj";
        public void LogErrorEvent(BuildErrorEventArgs e) => throw new InvalidOperationException(e.Message);
        public void LogWarningEvent(BuildWarningEventArgs e) => Warnings.Add(e.Message!);
        public void LogMessageEvent(BuildMessageEventArgs e) => Messages.Add(e.Message!);
        public void LogCustomEvent(CustomBuildEventArgs e) { }
        public bool BuildProjectFile(string projectFileName, string[] targetNames, IDictionary globalProperties, IDictionary targetOutputs) => false;
    }

    /// <summary>A system libstdc++ without GLIBCXX_3.4.32: this machine's (Debian 12) is one.</summary>
    static string SystemWithoutTheGcc13Version()
    {
        string system = ElfVersionNeeds.FindSystemLibStdCxx()!;
        Assert.DoesNotContain("GLIBCXX_3.4.32", ElfVersionNeeds.DefinedVersions(system));
        return system;
    }

    [Fact]
    public void The_task_patches_the_bridge_in_an_output_folder_and_says_so()
    {
        string native = Directory.CreateDirectory(Path.Combine(_folder, "runtimes", "linux-x64", "native")).FullName;
        string bridge = Path.Combine(native, "libLibTorchSharp.so");
        File.Copy(Fixture.PristineBridge(), bridge);
        var engine = new RecordingEngine();

        bool ok = new AlignmentWeakenUnneededGlibcxx { Directory = _folder, SystemLibStdCxx = SystemWithoutTheGcc13Version(), BuildEngine = engine }.Execute();

        Assert.True(ok);
        Assert.True(ElfVersionNeeds.ReadNeeds(bridge).Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak);
        Assert.Contains(engine.Messages, m => m.Contains(bridge) && m.Contains("GLIBCXX_3.4.32"));
        Assert.Empty(engine.Warnings);
    }

    [Fact]
    public void A_missing_folder_or_a_system_without_libstdcxx_changes_nothing()
    {
        var engine = new RecordingEngine();
        Assert.True(new AlignmentWeakenUnneededGlibcxx { Directory = Path.Combine(_folder, "absent"), BuildEngine = engine }.Execute());
        Assert.Empty(engine.Warnings);
    }
}
