#nullable enable
using System.Collections.Generic;
using Microsoft.Build.Framework;

namespace Alignment.Build
{
    /// <summary>Weakens missing, harmless libstdc++ version needs of the ELF files in a folder.</summary>
    public sealed class AlignmentWeakenUnneededGlibcxx : Microsoft.Build.Utilities.Task
    {
        /// <summary>The folder whose shared objects (searched recursively) are checked.</summary>
        [Required]
        public string Directory { get; set; } = "";

        /// <summary>Optional path of the libstdc++ to compare against; found on the system when empty.</summary>
        public string SystemLibStdCxx { get; set; } = "";

        /// <summary>Patches the folder's shared objects; logs what changed and warns about versions it cannot fix.</summary>
        public override bool Execute()
        {
            if (!System.IO.Directory.Exists(Directory))
                return true;
            string? libStdCxx = string.IsNullOrEmpty(SystemLibStdCxx) ? ElfVersionNeeds.FindSystemLibStdCxx() : SystemLibStdCxx;
            if (libStdCxx == null)
            {
                Log.LogMessage(MessageImportance.Normal,
                    "Alignment: no system libstdc++.so.6 found; native files in '{0}' left as they are.", Directory);
                return true;
            }
            HashSet<string> available = ElfVersionNeeds.DefinedVersions(libStdCxx);
            var patched = new List<string>();
            foreach (string file in ElfVersionNeeds.SharedObjectsUnder(Directory))
            {
                ElfPatchResult result = ElfVersionNeeds.WeakenMissingHarmless(file, available);
                if (result.Weakened.Count > 0)
                    patched.Add(file + " (" + string.Join(", ", result.Weakened) + ")");
                foreach (string blocked in result.Blocking)
                    Log.LogWarning("Alignment: {0} needs {1}, which {2} does not define; it is used by symbols that may be " +
                        "called, so it was left as is and the file will not load on this system.", file, blocked, libStdCxx);
            }
            if (patched.Count > 0)
                Log.LogMessage(MessageImportance.High,
                    "Alignment: marked as weak the libstdc++ versions missing from {0} and needed only by unused symbols, in: {1}",
                    libStdCxx, string.Join("; ", patched));
            return !Log.HasLoggedErrors;
        }
    }
}
