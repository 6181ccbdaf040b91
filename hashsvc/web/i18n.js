// The page's words, in English and French. Elements carry data-i18n="key" (text content) or
// data-i18n-label="key" (aria-label). t() fills {name} placeholders, and {name|one|many} picks
// the singular or plural form by the number `name` (French uses the singular for 0 and 1).

export const LANGUAGES = ["en", "fr"];

export const MESSAGES = {
  en: {
    "page.title": "hashsvc — stop the sharing of your intimate images",
    "skip": "Skip to the content",
    "brand": "hashsvc",
    "nav.label": "Main",
    "nav.submit": "Protect pictures",
    "nav.status": "Follow or withdraw a case",
    "lang.label": "Language",
    "noscript":
      "This page needs JavaScript: the fingerprints are computed by this page, on your device.",

    "submit.title": "Stop your intimate pictures from being shared",
    "submit.lead":
      "If intimate pictures or videos of you are shared, or you fear they will be, " +
      "this page helps partner platforms find and remove them, without your pictures ever " +
      "leaving this device.",
    "how.title": "How it works",
    "how.1.title": "Your pictures stay on this device.",
    "how.1.text":
      "They are never uploaded, not even to us. You can check: this page works the same " +
      "if you disconnect after it has loaded, until you send.",
    "how.2.title": "This page computes fingerprints.",
    "how.2.text":
      "A fingerprint (a \u201chash\u201d) is a short code computed from a picture. " +
      "The picture cannot be rebuilt from it. For a picture, a few parts of it are " +
      "fingerprinted too, so that cropped copies are found. For a video, about one frame " +
      "per second is fingerprinted.",
    "how.3.title": "Only the fingerprints are sent.",
    "how.3.text":
      "Partner platforms compare what people upload with these fingerprints. When an upload " +
      "matches, the platform reviews it and can remove it. Platforms never learn who you are " +
      "and never receive your pictures.",
    "how.4.title": "You stay in control.",
    "how.4.text":
      "You receive a case number and a secret code. With them you can see the matches and " +
      "what each platform decided, and withdraw your case at any time: its fingerprints " +
      "are then deleted and stop matching at once.",

    "pick.title": "1. Choose your pictures or videos",
    "pick.drop": "Drag and drop your files here, or",
    "pick.button": "Choose files",
    "pick.hint":
      "Pictures: JPEG, PNG, WebP, GIF or BMP. Videos: MP4 or WebM (about one frame per " +
      "second is used, up to {max} frames).",
    "pick.list": "Selected files",
    "pick.empty": "No file chosen yet.",
    "progress.label": "Fingerprinting progress",
    "progress.text": "{done} of {total} {total|file|files} processed.",
    "progress.frames": "{name}: frame {done} of {total}.",

    "file.remove": "Remove",
    "file.removeLabel": "Remove {name}",
    "file.video": "Video",
    "file.queued": "Waiting.",
    "file.working": "Computing fingerprints\u2026",
    "file.ready": "Ready: fingerprints computed on this device.",
    "file.readyVideo": "Ready: {count} {count|frame|frames} fingerprinted on this device.",
    "file.skippedFrames":
      "{count} nearly flat {count|frame was|frames were} left out.",
    "file.lowInfo":
      "Not usable: this picture has too little detail (flat or nearly flat) to be " +
      "recognised reliably. It will not be sent.",
    "file.lowInfoVideo":
      "Not usable: no frame of this video has enough detail to be recognised reliably. " +
      "It will not be sent.",
    "file.decodeError":
      "This file could not be read on this device. Try a JPEG or PNG picture, or an MP4 or " +
      "WebM video.",
    "file.unsupported": "This is not a picture or a video. It will not be sent.",
    "file.show": "Show the fingerprints",
    "file.quality": "quality {quality}",
    "file.crop": "PDQ of a part",

    "send.title": "2. Send the fingerprints",
    "send.summaryNone": "Choose at least one picture or video first.",
    "send.summary":
      "{count} {count|fingerprint|fingerprints} from {files} {files|file|files} will be sent. " +
      "Nothing else: no picture, no video, no file name.",
    "send.button": "Send the fingerprints",
    "send.sending": "Sending the fingerprints\u2026",
    "send.wait": "Please wait until every file has been processed.",

    "created.title": "Your case is registered",
    "created.lead":
      "{count} {count|fingerprint was|fingerprints were} received. Your pictures and videos " +
      "stayed on this device.",
    "created.warnTitle": "Save these two codes now.",
    "created.warn":
      "They are shown only once. We do not know who you are, so nobody can recover them or " +
      "send them to you again. Without them you cannot follow or withdraw your case.",
    "created.caseId": "Case number",
    "created.secret": "Secret code",
    "created.download": "Download as a text file",
    "created.saved": "I have saved my case number and my secret code",
    "created.continue": "See my case",
    "created.fileName": "hashsvc-case.txt",
    "created.fileText":
      "hashsvc case\n\nCase number: {caseId}\nSecret code: {secret}\n\n" +
      "Keep this file somewhere safe and private. With these two codes you can see the " +
      "matches of your case and withdraw it at any time on the hashsvc page ({url}).\n" +
      "They cannot be recovered if lost.\n",

    "status.title": "Follow or withdraw your case",
    "status.lead":
      "Enter the case number and the secret code you received when you sent the fingerprints.",
    "status.caseId": "Case number",
    "status.secret": "Secret code",
    "status.showSecret": "Show the secret code",
    "status.button": "Show my case",
    "status.loading": "Loading\u2026",
    "status.heading": "Your case",
    "status.state": "Status",
    "status.active": "Active: the fingerprints are being matched",
    "status.created": "Registered on",
    "status.fingerprints": "Fingerprints",
    "status.counts": "{pdq} PDQ, {phash} pHash",
    "status.videos": "Videos",
    "status.matches": "Matches",
    "status.noMatches": "No platform has found a match so far.",
    "status.matchCount": "{count} {count|match|matches} found.",
    "status.table": "Matches found by platforms",
    "status.col.platform": "Platform",
    "status.col.date": "Found on",
    "status.col.signal": "Fingerprint",
    "status.col.distance": "Difference",
    "status.col.decision": "Platform decision",
    "status.refresh": "Refresh",
    "status.refreshed": "Updated.",
    "decision.pending": "Waiting for the platform's review",
    "decision.removed": "Removed by the platform",
    "decision.not_violating": "Not removed: the platform found no violation",
    "decision.needs_more_info": "The platform needs more information",
    "decision.withdrawn": "Closed: you withdrew the case",
    "decision.on": "{decision} ({date})",

    "withdraw.title": "Withdraw the case",
    "withdraw.text":
      "Withdrawing deletes every fingerprint of this case: they stop matching at once, and " +
      "platforms are told there is nothing left to act on. This cannot be undone.",
    "withdraw.button": "Withdraw my case",
    "withdraw.confirmTitle": "Withdraw this case?",
    "withdraw.confirmText":
      "All the fingerprints of this case will be deleted and will stop matching. " +
      "You can send them again later as a new case if you wish.",
    "withdraw.confirm": "Yes, withdraw my case",
    "withdraw.cancel": "Cancel",
    "withdraw.done":
      "Your case was withdrawn. Its fingerprints were deleted and no longer match anything.",

    "error.title": "Something went wrong.",
    "error.network":
      "The service could not be reached. Check your connection and try again. Nothing was lost.",
    "error.notFound":
      "No case matches this case number and secret code. Please check both and try again.",
    "error.lowInfo":
      "The service refused a fingerprint that carries too little information (flat or nearly " +
      "flat picture). That file is marked in the list above and will not be sent; you can " +
      "send the others.",
    "error.tooMany":
      "Too many fingerprints for one case. Send fewer pictures or videos now, and the others " +
      "as another case.",
    "error.server": "The service answered: {message}",
    "error.missing": "Please fill in both the case number and the secret code.",

    "footer.text":
      "hashsvc is open-source software. No picture, video or file name is ever sent by this " +
      "page; it keeps nothing on this device once closed.",
  },

  fr: {
    "page.title": "hashsvc — empêcher la diffusion de vos images intimes",
    "skip": "Aller au contenu",
    "brand": "hashsvc",
    "nav.label": "Navigation principale",
    "nav.submit": "Protéger des images",
    "nav.status": "Suivre ou retirer un dossier",
    "lang.label": "Langue",
    "noscript":
      "Cette page a besoin de JavaScript : les empreintes sont calculées par cette page, sur " +
      "votre appareil.",

    "submit.title": "Empêcher la diffusion de vos images intimes",
    "submit.lead":
      "Si des photos ou des vidéos intimes de vous sont diffusées, ou si vous craignez " +
      "qu'elles le soient, cette page aide les plateformes partenaires à les retrouver et à " +
      "les retirer, sans que vos images quittent jamais cet appareil.",
    "how.title": "Comment ça marche",
    "how.1.title": "Vos images restent sur cet appareil.",
    "how.1.text":
      "Elles ne sont jamais envoyées, pas même à nous. Vous pouvez le vérifier : une fois " +
      "chargée, cette page fonctionne de la même façon hors connexion, jusqu'à l'envoi.",
    "how.2.title": "Cette page calcule des empreintes.",
    "how.2.text":
      "Une empreinte (un « hash ») est un code court calculé à partir d'une image. Il est " +
      "impossible de reconstituer l'image à partir de ce code. Pour une image, quelques " +
      "parties sont aussi prises en compte, pour retrouver les copies recadrées. Pour une " +
      "vidéo, environ une image par seconde est prise en compte.",
    "how.3.title": "Seules les empreintes sont envoyées.",
    "how.3.text":
      "Les plateformes partenaires comparent ce que leurs utilisateurs publient avec ces " +
      "empreintes. Quand une publication correspond, la plateforme l'examine et peut la " +
      "retirer. Les plateformes ne savent jamais qui vous êtes et ne reçoivent jamais vos " +
      "images.",
    "how.4.title": "Vous gardez la main.",
    "how.4.text":
      "Vous recevez un numéro de dossier et un code secret. Avec eux, vous pouvez voir les " +
      "correspondances et la décision de chaque plateforme, et retirer votre dossier à tout " +
      "moment : ses empreintes sont alors supprimées et cessent aussitôt de correspondre.",

    "pick.title": "1. Choisissez vos images ou vos vidéos",
    "pick.drop": "Glissez-déposez vos fichiers ici, ou",
    "pick.button": "Choisir des fichiers",
    "pick.hint":
      "Images : JPEG, PNG, WebP, GIF ou BMP. Vidéos : MP4 ou WebM (environ une image par " +
      "seconde est utilisée, {max} au maximum).",
    "pick.list": "Fichiers choisis",
    "pick.empty": "Aucun fichier choisi pour l'instant.",
    "progress.label": "Avancement du calcul des empreintes",
    "progress.text": "{done} {done|fichier traité|fichiers traités} sur {total}.",
    "progress.frames": "{name} : image {done} sur {total}.",

    "file.remove": "Retirer",
    "file.removeLabel": "Retirer {name}",
    "file.video": "Vidéo",
    "file.queued": "En attente.",
    "file.working": "Calcul des empreintes\u2026",
    "file.ready": "Prêt : empreintes calculées sur cet appareil.",
    "file.readyVideo":
      "Prêt : {count} {count|image de la vidéo traitée|images de la vidéo traitées} sur cet " +
      "appareil.",
    "file.skippedFrames":
      "{count} {count|image presque unie a été écartée|images presque unies ont été écartées}.",
    "file.lowInfo":
      "Inutilisable : cette image a trop peu de détails (unie ou presque) pour être " +
      "reconnue de façon fiable. Elle ne sera pas envoyée.",
    "file.lowInfoVideo":
      "Inutilisable : aucune image de cette vidéo n'a assez de détails pour être reconnue de " +
      "façon fiable. Elle ne sera pas envoyée.",
    "file.decodeError":
      "Ce fichier n'a pas pu être lu sur cet appareil. Essayez une image JPEG ou PNG, ou une " +
      "vidéo MP4 ou WebM.",
    "file.unsupported": "Ce fichier n'est ni une image ni une vidéo. Il ne sera pas envoyé.",
    "file.show": "Voir les empreintes",
    "file.quality": "qualité {quality}",
    "file.crop": "PDQ d'une partie",

    "send.title": "2. Envoyez les empreintes",
    "send.summaryNone": "Choisissez d'abord au moins une image ou une vidéo.",
    "send.summary":
      "{count} {count|empreinte issue|empreintes issues} de {files} {files|fichier|fichiers} " +
      "{count|sera envoyée|seront envoyées}. Rien d'autre : ni image, ni vidéo, ni nom de " +
      "fichier.",
    "send.button": "Envoyer les empreintes",
    "send.sending": "Envoi des empreintes\u2026",
    "send.wait": "Merci d'attendre la fin du traitement de tous les fichiers.",

    "created.title": "Votre dossier est enregistré",
    "created.lead":
      "{count} {count|empreinte a été reçue|empreintes ont été reçues}. Vos images et vos " +
      "vidéos sont restées sur cet appareil.",
    "created.warnTitle": "Enregistrez ces deux codes maintenant.",
    "created.warn":
      "Ils ne sont affichés qu'une seule fois. Nous ne savons pas qui vous êtes : personne ne " +
      "peut les retrouver ni vous les renvoyer. Sans eux, vous ne pourrez ni suivre ni " +
      "retirer votre dossier.",
    "created.caseId": "Numéro de dossier",
    "created.secret": "Code secret",
    "created.download": "Télécharger dans un fichier texte",
    "created.saved": "J'ai enregistré mon numéro de dossier et mon code secret",
    "created.continue": "Voir mon dossier",
    "created.fileName": "dossier-hashsvc.txt",
    "created.fileText":
      "Dossier hashsvc\n\nNuméro de dossier : {caseId}\nCode secret : {secret}\n\n" +
      "Gardez ce fichier en lieu sûr et privé. Avec ces deux codes, vous pouvez voir les " +
      "correspondances de votre dossier et le retirer à tout moment sur la page hashsvc " +
      "({url}).\nIls ne peuvent pas être retrouvés en cas de perte.\n",

    "status.title": "Suivre ou retirer votre dossier",
    "status.lead":
      "Saisissez le numéro de dossier et le code secret reçus lors de l'envoi des empreintes.",
    "status.caseId": "Numéro de dossier",
    "status.secret": "Code secret",
    "status.showSecret": "Afficher le code secret",
    "status.button": "Voir mon dossier",
    "status.loading": "Chargement\u2026",
    "status.heading": "Votre dossier",
    "status.state": "État",
    "status.active": "Actif : les empreintes sont comparées",
    "status.created": "Enregistré le",
    "status.fingerprints": "Empreintes",
    "status.counts": "{pdq} PDQ, {phash} pHash",
    "status.videos": "Vidéos",
    "status.matches": "Correspondances",
    "status.noMatches": "Aucune plateforme n'a trouvé de correspondance pour l'instant.",
    "status.matchCount":
      "{count} {count|correspondance trouvée|correspondances trouvées}.",
    "status.table": "Correspondances trouvées par les plateformes",
    "status.col.platform": "Plateforme",
    "status.col.date": "Trouvée le",
    "status.col.signal": "Empreinte",
    "status.col.distance": "Écart",
    "status.col.decision": "Décision de la plateforme",
    "status.refresh": "Actualiser",
    "status.refreshed": "Mis à jour.",
    "decision.pending": "En attente d'examen par la plateforme",
    "decision.removed": "Retiré par la plateforme",
    "decision.not_violating": "Non retiré : la plateforme n'a pas constaté d'infraction",
    "decision.needs_more_info": "La plateforme a besoin de plus d'informations",
    "decision.withdrawn": "Clos : vous avez retiré le dossier",
    "decision.on": "{decision} ({date})",

    "withdraw.title": "Retirer le dossier",
    "withdraw.text":
      "Le retrait supprime toutes les empreintes de ce dossier : elles cessent aussitôt de " +
      "correspondre, et les plateformes sont informées qu'il n'y a plus rien à traiter. " +
      "C'est définitif.",
    "withdraw.button": "Retirer mon dossier",
    "withdraw.confirmTitle": "Retirer ce dossier ?",
    "withdraw.confirmText":
      "Toutes les empreintes de ce dossier seront supprimées et ne correspondront plus à " +
      "rien. Vous pourrez les envoyer de nouveau plus tard, dans un nouveau dossier, si vous " +
      "le souhaitez.",
    "withdraw.confirm": "Oui, retirer mon dossier",
    "withdraw.cancel": "Annuler",
    "withdraw.done":
      "Votre dossier a été retiré. Ses empreintes ont été supprimées et ne correspondent plus " +
      "à rien.",

    "error.title": "Un problème est survenu.",
    "error.network":
      "Le service n'a pas pu être joint. Vérifiez votre connexion et réessayez. Rien n'a été " +
      "perdu.",
    "error.notFound":
      "Aucun dossier ne correspond à ce numéro et à ce code secret. Vérifiez-les et " +
      "réessayez.",
    "error.lowInfo":
      "Le service a refusé une empreinte qui contient trop peu d'informations (image unie ou " +
      "presque). Ce fichier est signalé dans la liste ci-dessus et ne sera pas envoyé ; vous " +
      "pouvez envoyer les autres.",
    "error.tooMany":
      "Trop d'empreintes pour un seul dossier. Envoyez moins d'images ou de vidéos maintenant, " +
      "et les autres dans un autre dossier.",
    "error.server": "Réponse du service : {message}",
    "error.missing": "Merci de saisir le numéro de dossier et le code secret.",

    "footer.text":
      "hashsvc est un logiciel libre. Cette page n'envoie jamais d'image, de vidéo ni de nom " +
      "de fichier, et ne garde rien sur cet appareil une fois fermée.",
  },
};

let current = "en";

/** The language to start with: the browser's preference if it is French, else English. */
export function preferredLanguage(languages = navigator.languages || [navigator.language]) {
  for (const tag of languages) {
    const base = String(tag || "").toLowerCase().split("-")[0];
    if (LANGUAGES.includes(base)) {
      return base;
    }
  }
  return "en";
}

export function language() {
  return current;
}

/** The message `key` in the current language, with {name} placeholders filled. */
export function t(key, params = {}) {
  const text = MESSAGES[current][key] ?? MESSAGES.en[key];
  if (text === undefined) {
    throw new Error(`missing message ${key}`);
  }
  const plural = (n) => (current === "fr" ? Math.abs(n) >= 2 : Math.abs(n) !== 1);
  return text
    .replace(/\{(\w+)\|([^|}]*)\|([^}]*)\}/g, (whole, name, one, many) =>
      name in params ? (plural(Number(params[name])) ? many : one) : whole,
    )
    .replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** Switch language and translate every marked element under `root`. */
export function setLanguage(lang, root = document) {
  current = LANGUAGES.includes(lang) ? lang : "en";
  document.documentElement.lang = current;
  document.title = t("page.title");
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of root.querySelectorAll("[data-i18n-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nLabel));
  }
}

/** A date and time in the current language, from a Unix time in seconds. */
export function formatTime(seconds) {
  const locale = current === "fr" ? "fr-FR" : "en-GB";
  return new Intl.DateTimeFormat(locale, { dateStyle: "long", timeStyle: "short" }).format(
    new Date(seconds * 1000),
  );
}
