# Build the Windows bundle and its installer (Inno Setup 6's iscc.exe on PATH).
#   powershell -File installer\windows\build.ps1 -Flavor review
#   powershell -File installer\windows\build.ps1 -Flavor full
# The same PyInstaller spec as Linux (installer/companion.spec); on Windows it also
# makes companion-app.exe (no console) for the Start menu and the companion:// handler.
# NOTE: kept beside the Linux build but not run by this project's CI (docs/installer.md).
param([ValidateSet("review", "full")][string]$Flavor = "review")
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")

$venv = "build\venv-$Flavor"
$python = "$venv\Scripts\python.exe"
if (-not (Test-Path $python)) {
    py -3.11 -m venv $venv
    & $python -m pip install --upgrade pip
    # torch from PyPI on Windows is a CPU build; a CUDA build comes from the PyTorch index.
    if ($Flavor -eq "full") { & $python -m pip install "torch==2.13.0" }
    & $python -m pip install -e ".[bundle]"
}
& $python installer\make_icons.py build\icons
$env:COMPANION_FLAVOR = $Flavor
& "$venv\Scripts\pyinstaller.exe" --noconfirm --clean --distpath dist `
    --workpath "build\pyinstaller-$Flavor" installer\companion.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }
$version = & $python -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])"
iscc "/DFlavor=$Flavor" "/DAppVersion=$version" installer\windows\companion.iss
if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed" }
