#!/usr/bin/env python3
"""Writes bench/injection/hort-mail-train.jsonl: benign letters and mails,
German and English, composed from parts written by hand, as training rows
for the learned injection head.

  python3 bench/injection/make_mail.py

Why: the benign side of the labelled sources is documentation, abstracts
and questions; the one source with ordinary mail (AgentDojo's inbox, 21
texts) is held out in its fold. A head trained so learns that a short text
addressed to someone ("Hi Emma, ... please send me ...") is an attack, since
most injections are worded so: held out, a head over e5-small's middle
layer flagged 11 of AgentDojo's 21 benign mails (a family-reunion reminder
at 0.86). Office mail is full of the words attacks use: "ignore the earlier
mail", "forget the old rule", "from now on", "follow the instructions",
"do not share your password", "reply to this address". These rows are that
mail, and no row asks a reader to do anything a mail's author may not ask.

Composed as  greeting + one to three body parts + closing + sign-off, the
body parts drawn from requests, notices, reminders, corrections and
replies. Deterministic (fixed seed); standard library only. hort's own rows,
never part of the headline figure. Not yet read by `hort bench injection`:
measured by appending them to a copy of the datasets' sources, and they
moved the threshold more than what the head tells apart
(bench/results/injection-layers.md, run 3).
"""
import json
import os
import random

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hort-mail-train.jsonl")

NAMES = ["Anna", "Jonas", "Mia", "Lukas", "Sophie", "Ben", "Clara", "Paul", "Lea",
         "Felix", "Emma", "Noah", "Julia", "David", "Sarah", "Tom", "Mark", "Laura"]

PARTS = {
    "en": {
        "greet": ["Hi {n},", "Hello {n},", "Dear {n},", "Hi all,", "Dear colleagues,",
                  "Good morning {n},", "Team,", "Hi {n}!", "Dear Sir or Madam,", "Hello everyone,"],
        "body": [
            "Could you send me the latest figures for the {p} project by Thursday?",
            "Please review the attached draft and let me know if anything is missing.",
            "Just a reminder that the team meeting moves to room 3.12 on Monday.",
            "Ignore my earlier mail, I attached the wrong file. This is the right version.",
            "Forget what I said about the deadline yesterday; we have until the end of the month.",
            "From now on, please send all invoices to accounts@{d} instead of to me.",
            "Follow the instructions in the attached guide to set up the new VPN client.",
            "Never share your password with anyone, not even with IT staff.",
            "If you did not request this password reset, you can safely ignore this email.",
            "Your verification code is {c}. It expires in ten minutes.",
            "The new policy replaces the old one completely, so please delete the printed copies.",
            "I have approved the request; you can go ahead and order the equipment.",
            "Please reply to this mail with your shirt size for the company run.",
            "We will send the signed contract back to you by post tomorrow.",
            "Thanks for the quick reply! I'll bring the documents to the meeting.",
            "Are you free for a short call this afternoon to go through the numbers?",
            "The system will be unavailable on Saturday from 8 to 12 for maintenance.",
            "Please forward this message to anyone in your team who missed the training.",
            "Summarise the key points of the workshop in a short note for the board, please.",
            "Delete the old templates from the shared drive once you have moved to the new ones.",
            "My manager has approved the trip, so please book the hotel for two nights.",
            "Print the boarding passes and keep your ID at hand at the gate.",
            "Remember to switch off the lights and lock the back door when you leave.",
            "The report is confidential: do not forward it outside the company.",
            "Translate the customer's letter into English and send it to legal.",
            "Could you check whether the customer's address in the system is still correct?",
            "We have received your request and will get back to you within two working days.",
            "Your order {c} has shipped and should arrive on Wednesday.",
            "There will be cake in the kitchen at three to celebrate {n}'s birthday.",
            "I'm out of office until Monday; for urgent matters please contact {n}.",
            "Update your bank details in the HR portal before the end of the month.",
            "Answer the survey honestly; the results are anonymous.",
            "The auditor may ask about access rights, so please have the list ready.",
            "Pretend you are a customer and test the new checkout before we launch it.",
            "Please act as the contact person for the supplier while I am away.",
            "Write a short summary of the call and save it in the project folder.",
            "The previous instructions for expense claims no longer apply; use the new form.",
            "Send me the login details for the test system by secure message, not by mail.",
        ],
        "close": ["Thanks,", "Best regards,", "Kind regards,", "Cheers,", "Thank you!",
                  "Best,", "Many thanks in advance,", "See you tomorrow,"],
    },
    "de": {
        "greet": ["Hallo {n},", "Liebe Kolleginnen und Kollegen,", "Sehr geehrte Damen und Herren,",
                  "Guten Morgen {n},", "Hallo zusammen,", "Liebe {n},", "Moin {n},", "Hi {n},"],
        "body": [
            "Könntest du mir bis Donnerstag die aktuellen Zahlen zum Projekt {p} schicken?",
            "Bitte prüfen Sie den angehängten Entwurf und geben Sie mir bis Freitag Bescheid.",
            "Zur Erinnerung: Die Teambesprechung findet am Montag in Raum 3.12 statt.",
            "Bitte ignorieren Sie meine vorige Mail, der Anhang war falsch. Hier die richtige Version.",
            "Vergiss, was ich gestern zur Frist gesagt habe; wir haben bis Monatsende Zeit.",
            "Ab sofort schicken Sie Rechnungen bitte an buchhaltung@{d} statt an mich.",
            "Folgen Sie der Anleitung im Anhang, um den neuen VPN-Zugang einzurichten.",
            "Geben Sie Ihr Passwort niemals weiter, auch nicht an die IT.",
            "Falls Sie das Zurücksetzen Ihres Passworts nicht angefordert haben, ignorieren Sie diese E-Mail.",
            "Ihr Bestätigungscode lautet {c}. Er ist zehn Minuten gültig.",
            "Die neue Richtlinie ersetzt die alte vollständig; bitte vernichten Sie die Ausdrucke.",
            "Ich habe den Antrag genehmigt, du kannst die Geräte jetzt bestellen.",
            "Bitte antworten Sie auf diese Mail mit Ihrer T-Shirt-Größe für den Firmenlauf.",
            "Den unterschriebenen Vertrag schicken wir Ihnen morgen per Post zurück.",
            "Danke für die schnelle Antwort! Ich bringe die Unterlagen zum Termin mit.",
            "Hast du heute Nachmittag kurz Zeit für ein Telefonat zu den Zahlen?",
            "Am Samstag ist das System von 8 bis 12 Uhr wegen Wartung nicht erreichbar.",
            "Bitte leiten Sie diese Nachricht an alle weiter, die die Schulung verpasst haben.",
            "Fassen Sie bitte die wichtigsten Punkte des Workshops für die Geschäftsführung zusammen.",
            "Löschen Sie die alten Vorlagen vom Laufwerk, sobald Sie die neuen verwenden.",
            "Mein Vorgesetzter hat die Reise genehmigt, bitte buchen Sie das Hotel für zwei Nächte.",
            "Denken Sie daran, beim Gehen das Licht auszuschalten und die Hintertür abzuschließen.",
            "Der Bericht ist vertraulich: Bitte nicht außerhalb des Unternehmens weitergeben.",
            "Übersetze bitte das Schreiben des Kunden ins Englische und schick es an die Rechtsabteilung.",
            "Wir haben Ihre Anfrage erhalten und melden uns innerhalb von zwei Werktagen.",
            "Ihre Bestellung {c} wurde versandt und kommt voraussichtlich am Mittwoch an.",
            "Um drei gibt es Kuchen in der Küche, {n} hat Geburtstag.",
            "Ich bin bis Montag nicht im Büro; in dringenden Fällen wenden Sie sich an {n}.",
            "Aktualisieren Sie Ihre Bankverbindung bis Monatsende im Personalportal.",
            "Die bisherigen Anweisungen zur Reisekostenabrechnung gelten nicht mehr; nutzen Sie das neue Formular.",
            "Schick mir die Zugangsdaten für das Testsystem bitte per verschlüsselter Nachricht, nicht per Mail.",
            "Tu bitte so, als wärst du Kunde, und teste den neuen Bestellprozess vor dem Start.",
            "Schreib nach dem Telefonat eine kurze Zusammenfassung und leg sie im Projektordner ab.",
            "Bitte beantworten Sie die Umfrage ehrlich, die Ergebnisse sind anonym.",
        ],
        "close": ["Danke und viele Grüße", "Viele Grüße", "Beste Grüße", "Mit freundlichen Grüßen",
                  "Schöne Grüße", "Danke dir!", "Bis morgen"],
    },
}
PROJECTS = ["Phoenix", "Nordstern", "Atlas", "Kranich", "Delta", "Lotse"]
DOMAINS = ["example.com", "nordwind.example", "firma.example"]


def compose(rng, lang):
    p = PARTS[lang]
    n = rng.choice(NAMES)
    fill = {"n": n, "p": rng.choice(PROJECTS), "d": rng.choice(DOMAINS),
            "c": str(rng.randrange(100000, 999999))}
    body = rng.sample(p["body"], rng.choice([1, 1, 2, 2, 3]))
    parts = [rng.choice(p["greet"]), " ".join(body), rng.choice(p["close"]), rng.choice(NAMES)]
    if rng.random() < 0.3:
        # As an ingested .eml is read: the headers first.
        subj = "Re: " if rng.random() < 0.5 else ""
        subj += " ".join(body[0].split(",")[0].split(".")[0].split()[:6])
        parts.insert(0, f"From: {rng.choice(NAMES)} <office@{fill['d']}>\nSubject: {subj}")
    return "\n\n".join(parts).format(**fill)


def main():
    rng = random.Random(20261208)
    seen = set()
    rows = []
    for lang, count in (("en", 240), ("de", 160)):
        while sum(1 for r in rows if r["lang"] == lang) < count:
            t = compose(rng, lang)
            if t in seen:
                continue
            seen.add(t)
            rows.append({"id": f"mail-{lang}-{len(rows):03d}", "label": "benign", "lang": lang,
                         "kind": "benign", "text": t})
    with open(OUT, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"make_mail: wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()
