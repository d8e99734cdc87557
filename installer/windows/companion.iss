; Inno Setup 6 script: installs the PyInstaller one-folder bundle per machine, adds a
; Start menu entry and registers the companion:// URL protocol.
; installer/windows/build.ps1 runs it; by hand (paths relative to this file):
;   iscc /DFlavor=review /DAppVersion=0.1.0 installer\windows\companion.iss
; Silent install for software deployment: setup.exe /VERYSILENT /SUPPRESSMSGBOXES /NORESTART
; Sign the setup and the executables with the site's certificate: pass /S"signtool=..."
; to iscc and uncomment SignTool below.
; NOTE: written and kept beside the Linux build, but not built or run on Windows by
; this project's CI (docs/installer.md says what was run where).

#ifndef Flavor
  #define Flavor "review"
#endif
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\companion-" + Flavor
#endif
#ifndef IconFile
  #define IconFile "..\..\build\icons\companion.ico"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif
#define AppName "AI Review Companion"
#define GuiExe "companion-app.exe"

[Setup]
; One AppId for both flavors: installing one replaces the other.
AppId={{6F1C2B8E-4D0A-4F3B-9C55-2E7A1D9B4C31}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion} ({#Flavor})
AppPublisher=AI Review Companion team
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=admin
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=ai-review-companion-{#Flavor}-{#AppVersion}-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\{#GuiExe}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesAssociations=yes
CloseApplications=yes
;SignTool=signtool

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; A previous version's libraries must not linger beside the new ones.
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#GuiExe}"; Comment: "Review AI findings beside your PACS"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#GuiExe}"; Tasks: desktopicon

[Registry]
; companion://open?study=UID (or ?accession=ACC) starts the companion on that study.
Root: HKLM; Subkey: "Software\Classes\companion"; ValueType: string; ValueName: ""; ValueData: "URL:{#AppName} link"; Flags: uninsdeletekey
Root: HKLM; Subkey: "Software\Classes\companion"; ValueType: string; ValueName: "URL Protocol"; ValueData: ""
Root: HKLM; Subkey: "Software\Classes\companion\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: """{app}\{#GuiExe}"",0"
Root: HKLM; Subkey: "Software\Classes\companion\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#GuiExe}"" ""%1"""

[Run]
Filename: "{app}\{#GuiExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
