// Report what an email's HTML uses that the listed mail clients do not support (caniemail data).
// Usage: node scripts/check-email-clients.mjs FILE.html... ; prints one JSON object per file.
import { readFileSync } from "node:fs";
import { doIUseEmail } from "doiuse-email";

const clients = [
  "gmail.desktop-webmail",
  "gmail.ios",
  "gmail.android",
  "outlook.windows",
  "outlook.outlook-com",
  "apple-mail.macos",
  "apple-mail.ios",
];

for (const file of process.argv.slice(2)) {
  const result = doIUseEmail(readFileSync(file, "utf8"), { emailClients: clients });
  console.log(JSON.stringify({ file, ...result }));
}
